"""The real partner clients under test, each pointed at its loopback API.

A `Client` says how to start the provider-shaped server, how to build the
partner package's chat model against it (dummy key, loopback base URL, no
retries), which model key the handler should file usage under and which
snapshot name the server answers with.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from langchain_anthropic import ChatAnthropic
from langchain_aws import ChatBedrockConverse
from langchain_deepseek import ChatDeepSeek
from langchain_google_genai import ChatGoogleGenerativeAI
from langchain_mistralai import ChatMistralAI
from langchain_ollama import ChatOllama
from langchain_openai import ChatOpenAI

from tests.integration_tests.anthropic_api import AnthropicApp
from tests.integration_tests.bedrock_api import BedrockApp
from tests.integration_tests.gemini_api import GeminiApp
from tests.integration_tests.ollama_api import OllamaApp
from tests.integration_tests.openai_api import (
    OpenAIApp,
    deepseek_app,
    mistral_app,
    vllm_app,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from langchain_core.language_models import BaseChatModel

    from tests.integration_tests.loopback import App

__all__ = ["CLIENTS", "Client"]


def _openai(url: str, **kwargs: Any) -> BaseChatModel:
    kwargs.setdefault("model", "gpt-4o")
    kwargs.setdefault("stream_usage", True)
    return ChatOpenAI(
        base_url=url + "/v1", api_key="sk-loopback", max_retries=0, **kwargs
    )


def _responses(url: str, **kwargs: Any) -> BaseChatModel:
    return _openai(url, use_responses_api=True, **kwargs)


def _vllm(url: str, **kwargs: Any) -> BaseChatModel:
    kwargs.setdefault("model", "meta-llama/Llama-3.1-8B-Instruct")
    return _openai(url, **kwargs)


def _anthropic(url: str, **kwargs: Any) -> BaseChatModel:
    kwargs.setdefault("model", "claude-sonnet-4-5")
    return ChatAnthropic(
        base_url=url, api_key="sk-ant-loopback", max_retries=0, **kwargs
    )


def _ollama(url: str, **kwargs: Any) -> BaseChatModel:
    kwargs.setdefault("model", "qwen3:8b")
    return ChatOllama(base_url=url, **kwargs)


def _mistral(url: str, **kwargs: Any) -> BaseChatModel:
    kwargs.setdefault("model", "mistral-large-latest")
    return ChatMistralAI(
        base_url=url + "/v1", api_key="loopback", max_retries=0, **kwargs
    )


def _gemini(url: str, **kwargs: Any) -> BaseChatModel:
    kwargs.setdefault("model", "gemini-2.5-flash")
    return ChatGoogleGenerativeAI(
        base_url=url, api_key="loopback", max_retries=0, **kwargs
    )


BEDROCK_MODEL = "anthropic.claude-3-5-sonnet-20240620-v1:0"


def _bedrock(url: str, **kwargs: Any) -> BaseChatModel:
    kwargs.setdefault("model", BEDROCK_MODEL)
    # Dummy credentials: botocore signs the request, the loopback API ignores it.
    return ChatBedrockConverse(
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="AKIDLOOPBACK",
        aws_secret_access_key="loopback-secret",  # noqa: S106 - a dummy
        **kwargs,
    )


def _deepseek(url: str, **kwargs: Any) -> BaseChatModel:
    kwargs.setdefault("model", "deepseek-chat")
    kwargs.setdefault("stream_usage", True)
    return ChatDeepSeek(
        api_base=url + "/v1", api_key="loopback", max_retries=0, **kwargs
    )


@dataclass(frozen=True)
class Client:
    """One partner client and the API it talks to."""

    id: str
    app: Callable[[], App]
    make: Callable[..., BaseChatModel]
    key: str  # the model key the handler should file usage under
    served: str  # the snapshot the server answers with


CLIENTS: tuple[Client, ...] = (
    Client("openai-chat", OpenAIApp, _openai, "gpt-4o", "gpt-4o-2024-08-06"),
    Client("openai-responses", OpenAIApp, _responses, "gpt-4o", "gpt-4o-2024-08-06"),
    Client(
        "vllm",
        vllm_app,
        _vllm,
        "meta-llama/Llama-3.1-8B-Instruct",
        "meta-llama/Llama-3.1-8B-Instruct",
    ),
    Client(
        "anthropic",
        AnthropicApp,
        _anthropic,
        "claude-sonnet-4-5",
        "claude-sonnet-4-5-20250929",
    ),
    Client("ollama", OllamaApp, _ollama, "qwen3:8b", "qwen3:8b"),
    Client(
        "mistral", mistral_app, _mistral, "mistral-large-latest", "mistral-large-latest"
    ),
    Client("gemini", GeminiApp, _gemini, "gemini-2.5-flash", "gemini-2.5-flash"),
    Client("bedrock", BedrockApp, _bedrock, BEDROCK_MODEL, BEDROCK_MODEL),
    Client("deepseek", deepseek_app, _deepseek, "deepseek-chat", "deepseek-chat"),
)
