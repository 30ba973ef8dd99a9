"""Parsing: any token-usage payload to one `TokenUsage` record, or a reason.

`parse_usage` accepts LangChain objects (`AIMessage`, `AIMessageChunk`,
`ChatGeneration`, `LLMResult`, a `usage_metadata`, `llm_output` or
`response_metadata` dict), raw provider responses and stream events (dicts, or
SDK objects with ``model_dump()``/``to_dict()``/attributes), and lists or other
iterables of stream chunks. Every result follows LangChain's `UsageMetadata`
convention: ``input_tokens`` is the whole prompt, cache reads and writes
included; ``output_tokens`` includes reasoning; details are subsets.

Provider detection (when ``provider=None``) goes by the keys of the usage
object: ``prompt_tokens`` is OpenAI Chat Completions (DeepSeek with
``prompt_cache_hit_tokens``, Groq under ``x_groq`` or with ``queue_time``);
``input_tokens`` with ``input_tokens_details`` is the OpenAI Responses API, with
``input_token_details`` LangChain, with ``cache_*_input_tokens`` Anthropic;
``promptTokenCount``/``prompt_token_count`` Gemini; ``inputTokens`` Bedrock
Converse; ``prompt_eval_count`` Ollama; ``tokens``/``billed_units`` Cohere.
A ``model_provider`` in ``response_metadata`` overrides detection, and an
explicit ``provider=`` overrides both. Mistral, vLLM and other OpenAI-compatible
servers are read as OpenAI (pass ``provider=`` to label them). Provider names
are case-insensitive, with aliases: ``gemini``, ``google_genai``, ``vertexai``
-> ``google``; ``azure``, ``azure_openai``, ``xai``, ``fireworks``,
``together``, ``deepinfra``, ``openrouter`` -> ``openai``; ``amazon_bedrock``,
``bedrock_converse`` -> ``bedrock``.

Flags on a record:

- ``"llm_cache_hit"``: a LangChain LLM-cache replay (``usage_metadata`` has
  ``total_cost == 0``); it cost nothing and must not be learned from.
- ``"server_tool_input"``: Anthropic server tools (web search...) fed results
  back inside the request, so ``input_tokens`` is not the size of the prompt.
- ``"cumulative_stream"``: several stream chunks carried cumulative counts and
  the last was taken (informational).
- ``"count_only"``: a token-count endpoint's answer (Anthropic ``count_tokens``,
  Gemini ``countTokens``): the prompt's size, no output; learned like any
  report of that prompt.

Validation: counts must be integers in ``[0, 10**9]`` (integral floats such as
``12.0`` are accepted; booleans, numeric strings, NaN and fractions are not);
details may not exceed their parent; a reported total may not be smaller than
input + output; input and output both 0 is "no usage". Extras that are malformed
are dropped rather than fatal.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from typing import Final

from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, LLMResult

from langchain_tokencal._providers import (
    PROVIDERS,
    canonical,
    unknown_provider_message,
)
from langchain_tokencal._usage.draft import (
    MAX_COUNT,
    Draft,
    UsageProblem,
    as_mapping,
    finish,
    no_usage,
)
from langchain_tokencal._usage.messages import (
    fast_message_usage,
    from_llm_result,
    from_message,
)
from langchain_tokencal._usage.record import TokenUsage
from langchain_tokencal._usage.search import parse_response
from langchain_tokencal._usage.streams import from_stream
from langchain_tokencal.errors import UnknownProviderError, UsageError

__all__ = ["SUPPORTED_PROVIDERS", "coerce_usage", "explain_usage", "parse_usage"]

logger = logging.getLogger(__name__)

SUPPORTED_PROVIDERS: Final[tuple[str, ...]] = PROVIDERS
"""Canonical provider names accepted by ``provider=`` (aliases map onto them)."""


def parse_usage(
    payload: object, provider: str | None = None, *, strict: bool = False
) -> TokenUsage | None:
    """Normalize a usage payload, or return ``None`` if it has none to trust.

    Thread-safe and cheap on an `AIMessage` (attributes only, no copies).

    Args:
        payload: A LangChain message, generation, `LLMResult`, usage dict, raw
            provider response or event, or an iterable of stream chunks.
        provider: Provider name or alias (case-insensitive) to label the
            record with; ``None`` detects it from the payload's shape.
        strict: Raise `UsageError` instead of returning ``None``.

    Returns:
        The normalized record, or ``None`` (see `explain_usage` for why).

    Raises:
        UnknownProviderError: ``provider`` is not a known name or alias.
        UsageError: Only with ``strict=True``, when there is no usable usage.

    Example:
        ```python
        from langchain_core.messages import AIMessage
        from langchain_tokencal import parse_usage

        counts = {"input_tokens": 9, "output_tokens": 2, "total_tokens": 11}
        usage = parse_usage(AIMessage("hi", usage_metadata=counts))
        assert usage is not None and usage.input_tokens == 9
        ```
    """
    name = None if provider is None else _provider_name(provider)
    try:
        return _parse(payload, name)
    except UsageProblem as problem:
        reason = str(problem)
    except Exception as exc:  # noqa: BLE001 - foreign objects may fail in any way
        reason = f"rejected: payload could not be read ({type(exc).__name__})"
    if strict:
        raise UsageError(reason)
    logger.debug("usage not recorded: %s", reason)
    return None


def coerce_usage(usage: object, provider: str | None = None) -> TokenUsage | None:
    """A `TokenUsage` from itself, from reported input tokens, or from a payload.

    An ``int`` is the reported input tokens (no output); anything else is
    read by `parse_usage` (a usage dict, a provider response, an
    ``AIMessage``; ``provider`` as there). ``None`` when it holds no usage
    to trust.

    Example:
        ```python
        from langchain_tokencal._usage.parse import coerce_usage

        assert coerce_usage(12).input_tokens == 12
        assert coerce_usage({"input_tokens": 9, "output_tokens": 2}).total_tokens == 11
        assert coerce_usage("twelve") is None
        ```
    """
    if isinstance(usage, TokenUsage):
        return usage
    if isinstance(usage, int) and not isinstance(usage, bool):
        if not 0 < usage <= MAX_COUNT:
            return None
        return TokenUsage(input_tokens=usage, output_tokens=0, total_tokens=usage)
    return parse_usage(usage, provider)


def explain_usage(payload: object, provider: str | None = None) -> str:
    """Say what `parse_usage` makes of a payload, in one line.

    Args:
        payload: Anything `parse_usage` accepts.
        provider: As for `parse_usage`.

    Returns:
        ``"ok: ..."`` with the counts, or ``"no usage: <why>"`` /
        ``"rejected: <why>"``.

    Raises:
        UnknownProviderError: ``provider`` is not a known name or alias.

    Example:
        ```python
        from langchain_tokencal import explain_usage

        print(explain_usage({"usage": {"prompt_tokens": 10, "total_tokens": 5}}))
        # rejected: total_tokens (5) < input_tokens (10) + output_tokens (0)
        ```
    """
    try:
        usage = parse_usage(payload, provider, strict=True)
    except UsageError as err:
        return str(err)
    assert usage is not None  # noqa: S101 - strict parsing never returns None
    parts = [
        f"input_tokens={usage.input_tokens}",
        f"output_tokens={usage.output_tokens}",
        f"total_tokens={usage.total_tokens}",
    ]
    parts.extend(
        f"{name}={value}"
        for name, value in (
            ("cache_read", usage.cache_read),
            ("cache_creation", usage.cache_creation),
            ("reasoning", usage.reasoning),
        )
        if value
    )
    if usage.provider:
        parts.append(f"provider={usage.provider}")
    if usage.model:
        parts.append(f"model={usage.model}")
    if usage.flags:
        parts.append(f"flags={','.join(sorted(usage.flags))}")
    return "ok: " + " ".join(parts)


def _provider_name(provider: object) -> str:
    name = canonical(provider) if isinstance(provider, str) else None
    if name is None:
        msg = unknown_provider_message(
            provider, none_means="detect it from the payload"
        )
        raise UnknownProviderError(msg)
    return name


def _parse(payload: object, provider: str | None) -> TokenUsage:
    if isinstance(payload, AIMessage):
        usage = fast_message_usage(payload, provider)
        if usage is not None:
            return usage
    return finish(_draft_of(payload), provider)


def _draft_of(payload: object) -> Draft:  # noqa: PLR0911 - one branch per type
    # LangChain types first: they are the callback hot path.
    if isinstance(payload, BaseMessage):
        return from_message(payload)
    if isinstance(payload, ChatGeneration):
        return from_message(payload.message)
    if isinstance(payload, LLMResult):
        return from_llm_result(payload)
    if isinstance(payload, Mapping):
        return parse_response(payload)
    if payload is None or isinstance(payload, (str, bytes, bytearray)):
        msg = f"payload is {type(payload).__name__}"
        raise no_usage(msg)
    if isinstance(payload, (list, tuple, Iterator)):
        return from_stream(payload)
    mapping = as_mapping(payload)  # Generation, SDK objects, plain objects
    if mapping is not None:
        return parse_response(mapping)
    if isinstance(payload, Iterable):
        return from_stream(payload)
    msg = f"unsupported payload type {type(payload).__name__}"
    raise no_usage(msg)
