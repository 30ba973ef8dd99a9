"""Provider identity, in one place: aliases, guesses, and whose tokenizer applies.

Two questions are kept apart on purpose:

- *Whose usage format is it?* `canonical` maps a provider name or alias to the
  family whose payloads it sends (``xai`` and ``fireworks`` answer in OpenAI's
  format, so they are ``openai``). Usage parsing, billing and priors use this.
- *Whose tokenizer counts it?* `counts_with_openai_tokenizer` is true only for
  hosts of OpenAI's own models. Grok or a Llama served by Fireworks speak
  OpenAI's wire format but are not counted by tiktoken's rules.

Example:
    ```python
    from langchain_tokencal._providers import canonical, counts_with_openai_tokenizer

    assert canonical("xai") == "openai"
    assert not counts_with_openai_tokenizer("xai")
    assert counts_with_openai_tokenizer("azure")
    ```
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

__all__ = [
    "PROVIDERS",
    "canonical",
    "canonical_label",
    "counts_with_openai_tokenizer",
    "guess_provider",
    "provider_of_llm_type",
    "snapshot_of",
    "unknown_provider_message",
]

_ALIASES: Final = {
    alias: name
    for name, aliases in {
        "openai": "azure azure_openai azure_ai xai fireworks together deepinfra "
        "openrouter perplexity",
        "anthropic": "google_anthropic_vertex",
        "google": "gemini google_genai google_vertexai vertexai vertex_ai",
        "bedrock": "amazon_bedrock bedrock_converse aws_bedrock",
        "mistral": "mistralai",
        "ollama": "",
        "cohere": "",
        "deepseek": "",
        "groq": "",
        "vllm": "",
    }.items()
    for alias in (name, *aliases.split())
}

PROVIDERS: Final = tuple(sorted(set(_ALIASES.values())))
"""The canonical provider families, sorted."""

# Hosts of OpenAI's own models, whose prompt counts follow tiktoken's chat rules.
_OPENAI_TOKENIZER: Final = frozenset({"openai", "azure", "azure_openai", "azureopenai"})

# LangChain's ``_type`` of common chat integrations, for models whose run
# metadata carries no ``ls_provider``.
_BY_LLM_TYPE: Final[Mapping[str, str]] = {
    "openai-chat": "openai",
    "azure-openai-chat": "openai",
    "anthropic-chat": "anthropic",
    "chat-google-generative-ai": "google",
    "vertexai": "google",
    "amazon_bedrock_converse_chat": "bedrock",
    "amazon_bedrock_chat": "bedrock",
    "chat-ollama": "ollama",
    "groq-chat": "groq",
    "mistralai-chat": "mistral",
    "cohere-chat": "cohere",
    "chat-deepseek": "deepseek",
}

# Model-name fragments of the major providers, for counters created without one.
_NAME_HINTS: Final[tuple[tuple[str, str], ...]] = (
    ("claude", "anthropic"),
    ("gemini", "google"),
    ("gemma", "google"),
    ("gpt-", "openai"),
    ("chatgpt", "openai"),
    ("command", "cohere"),
    ("deepseek", "deepseek"),
    ("mistral", "mistral"),
    ("mixtral", "mistral"),
)


def _key(name: str) -> str:
    return name.strip().lower().replace("-", "_")


def canonical(name: str) -> str | None:
    """The provider family of a name or alias, case-insensitive; else None."""
    return _ALIASES.get(_key(name))


@functools.lru_cache(maxsize=256)
def canonical_label(name: str) -> str:
    """A payload's own provider string: canonical if known, else kept as given."""
    return canonical(name) or name


def counts_with_openai_tokenizer(provider: str) -> bool:
    """True if the provider serves OpenAI's own models (OpenAI, Azure OpenAI)."""
    return _key(provider) in _OPENAI_TOKENIZER


def provider_of_llm_type(llm_type: str) -> str | None:
    """The provider family of a LangChain chat model's ``_type``, if known."""
    return _BY_LLM_TYPE.get(llm_type)


def guess_provider(model: str) -> str | None:
    """The provider a model name most likely belongs to, or ``None``.

    Example:
        ```python
        from langchain_tokencal._providers import guess_provider

        assert guess_provider("claude-sonnet-4-5") == "anthropic"
        assert guess_provider("my-finetune") is None
        ```
    """
    name = model.lower().rsplit("/", 1)[-1]
    if "gpt-oss" in name:
        return None  # open weights, served by any host
    # OpenAI's reasoning models: "o1", "o3-mini", "o4-mini-2025-04-16"...
    if name[:2] in {"o1", "o3", "o4"} and name[2:3] in {"", "-"}:
        return "openai"
    for fragment, provider in _NAME_HINTS:
        if fragment in name:
            return provider
    return None


def snapshot_of(model: str, known: Iterable[str]) -> str | None:
    """The known model that ``model`` is a dated snapshot of, if any.

    A snapshot is the name, a dash and a digit: ``gpt-4o-2024-08-06`` is a
    snapshot of ``gpt-4o``; ``gpt-4o-mini`` is not.
    """
    for name in known:
        rest = model[len(name) :]
        if model.startswith(name) and rest[:1] == "-" and rest[1:2].isdigit():
            return name
    return None


def unknown_provider_message(provider: object, *, none_means: str) -> str:
    """The one message for a provider name that is not known.

    Args:
        provider: What the caller passed.
        none_means: What passing None instead does, e.g. "guess it from the
            model name".
    """
    return (
        f"Unknown provider {provider!r}; expected one of {', '.join(PROVIDERS)}, "
        "an alias such as 'azure', 'gemini' or 'bedrock_converse', "
        f"or None to {none_means}."
    )
