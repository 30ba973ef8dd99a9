"""Normalize any token-usage payload to one `TokenUsage` record.

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

Validation: counts must be integers in ``[0, 10**9]`` (integral floats such as
``12.0`` are accepted; booleans, numeric strings, NaN and fractions are not);
details may not exceed their parent; a reported total may not be smaller than
input + output; input and output both 0 is "no usage". Extras that are malformed
are dropped rather than fatal.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, TypeVar, cast

from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, LLMResult

from langchain_tokencal._providers import (
    PROVIDERS,
    canonical,
    canonical_label,
    unknown_provider_message,
)
from langchain_tokencal._usage.families import (
    MAX_COUNT,
    Draft,
    UsageProblem,
    as_mapping,
    count,
    no_usage,
    parse_anthropic,
    parse_response,
    parse_usage_metadata,
    rejected,
)
from langchain_tokencal.errors import UnknownProviderError, UsageError

if TYPE_CHECKING:
    from langchain_core.messages.ai import UsageMetadata

__all__ = [
    "SUPPORTED_PROVIDERS",
    "USAGE_FIELDS",
    "TokenUsage",
    "explain_usage",
    "parse_usage",
]

logger = logging.getLogger(__name__)

_T = TypeVar("_T")

USAGE_FIELDS: Final = (
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "cache_read",
    "cache_creation",
    "reasoning",
    "input_audio",
    "output_audio",
)
"""The order of per-model usage totals: what a handler bills and a store sums."""

SUPPORTED_PROVIDERS: Final[tuple[str, ...]] = PROVIDERS
"""Canonical provider names accepted by ``provider=`` (aliases map onto them)."""

_MAX_STREAM_ITEMS: Final = 100_000
_NO_EXTRAS: Final[Mapping[str, int]] = MappingProxyType({})
_NO_FLAGS: Final[frozenset[str]] = frozenset()
_EPHEMERAL_KEYS: Final = frozenset(
    {"ephemeral_5m_input_tokens", "ephemeral_1h_input_tokens"}
)
# A tuple, not a set: the "type" values tested against it may be unhashable.
_ANTHROPIC_EVENTS: Final = ("message_start", "message_delta")


def _no_extras() -> Mapping[str, int]:
    return _NO_EXTRAS


@dataclass(frozen=True, slots=True)
class TokenUsage:
    """One call's token usage in LangChain's `UsageMetadata` convention.

    Attributes:
        input_tokens: The whole prompt, cache reads and writes included.
        output_tokens: The completion, reasoning/thinking included.
        total_tokens: As reported, else input + output (+ billed extras such as
            Gemini's tool-use prompt).
        cache_read: Input tokens read from a prompt cache (subset of input).
        cache_creation: Input tokens written to a prompt cache (subset of input).
        reasoning: Reasoning tokens (subset of output).
        provider: Canonical provider name, or the payload's own
            ``model_provider`` string when it is not a known alias.
        model: Model name found in the payload, if any.
        extras: Provider additions (``input_audio``, ``tool_use_prompt``,
            ``billed_input``, ``prediction_accepted``...), read-only.
        raw_keys: The keys of the usage object that was read.
        flags: ``llm_cache_hit``, ``server_tool_input``, ``cumulative_stream``
            (see the module docstring).

    Records are immutable and thread-safe; ``extras`` is left out of the hash.

    Example:
        ```python
        from langchain_tokencal import parse_usage

        usage = parse_usage({"usage": {"prompt_tokens": 12, "completion_tokens": 3}})
        assert usage is not None and usage.total_tokens == 15
        ```
    """

    input_tokens: int
    output_tokens: int
    total_tokens: int
    cache_read: int = 0
    cache_creation: int = 0
    reasoning: int = 0
    provider: str | None = None
    model: str | None = None
    extras: Mapping[str, int] = field(default_factory=_no_extras, hash=False)
    raw_keys: frozenset[str] = frozenset()
    flags: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        """Freeze a plain ``extras`` dict given by a caller."""
        if type(self.extras) is not MappingProxyType:
            object.__setattr__(self, "extras", MappingProxyType(dict(self.extras)))

    def to_usage_metadata(self) -> UsageMetadata:
        """Convert to LangChain's `UsageMetadata`, details only when nonzero.

        Returns:
            A new dict; ``input_token_details`` holds ``cache_read``,
            ``cache_creation`` and ``audio``; ``output_token_details`` holds
            ``reasoning`` and ``audio``.

        Example:
            ```python
            from langchain_tokencal._usage.parse import TokenUsage

            meta = TokenUsage(100, 20, 120, cache_read=80).to_usage_metadata()
            assert meta["input_token_details"] == {"cache_read": 80}
            ```
        """
        # A plain dict, cast once: mypy targets 3.10, where langchain-core's
        # `typing.NotRequired` keys read as required.
        meta: dict[str, Any] = {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "total_tokens": self.total_tokens,
        }
        inputs = {
            "cache_read": self.cache_read,
            "cache_creation": self.cache_creation,
            "audio": self.extras.get("input_audio", 0),
        }
        outputs = {
            "reasoning": self.reasoning,
            "audio": self.extras.get("output_audio", 0),
        }
        for key, details in (
            ("input_token_details", inputs),
            ("output_token_details", outputs),
        ):
            nonzero = {name: value for name, value in details.items() if value}
            if nonzero:
                meta[key] = nonzero
        return cast("UsageMetadata", meta)


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
        from langchain_tokencal._usage.parse import explain_usage

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
        usage = _fast_message_usage(payload, provider)
        if usage is not None:
            return usage
    return _finish(_draft_of(payload), provider)


def _fast_message_usage(message: AIMessage, provider: str | None) -> TokenUsage | None:
    """The callback hot path: a clean `usage_metadata` read in one pass.

    Handles only plain ints, the usual detail keys and consistent counts;
    anything else returns ``None`` and the general path decides and explains.
    Tests check that both paths agree.
    """
    meta = message.usage_metadata
    if type(meta) is not dict or "total_cost" in meta:
        return None
    counts = _fast_counts(meta)
    if counts is None:
        return None
    model = label = None
    metadata = message.response_metadata
    if metadata:
        raw = metadata.get("usage")
        if raw and type(raw) is dict and raw.get("server_tool_use"):
            return None
        model = metadata.get("model_name") or metadata.get("model")
        if not (model and type(model) is str):
            model = None
        label = metadata.get("model_provider") or metadata.get("ls_provider")
        label = canonical_label(label) if label and type(label) is str else None
    inp, out, total, read, write, reasoning = counts
    return TokenUsage(
        inp,
        out,
        total,
        read,
        write,
        reasoning,
        provider or label,
        model,
        _NO_EXTRAS,
        frozenset(meta),
        _NO_FLAGS,
    )


def _fast_counts(
    meta: Mapping[str, object],
) -> tuple[int, int, int, int, int, int] | None:
    """Input, output, total, cache read, cache write, reasoning; or None if odd."""
    inp = meta.get("input_tokens")
    out = meta.get("output_tokens")
    total = meta.get("total_tokens")
    if type(inp) is not int or type(out) is not int or type(total) is not int:
        return None
    cache = _fast_cache(meta.get("input_token_details"))
    reasoning = _fast_reasoning(meta.get("output_token_details"))
    if cache is None or reasoning is None:
        return None
    read, write = cache
    consistent = (
        inp >= 0
        and out >= 0
        and 0 < inp + out <= total <= MAX_COUNT
        and read + write <= inp
        and reasoning <= out
    )
    return (inp, out, total, read, write, reasoning) if consistent else None


def _fast_cache(details: object) -> tuple[int, int] | None:
    if not details:
        return 0, 0
    if type(details) is not dict:
        return None
    read = write = ephemeral = 0
    for key, value in details.items():
        if type(value) is not int or value < 0:
            return None
        if key == "cache_read":
            read = value
        elif key == "cache_creation":
            write = value
        elif key in _EPHEMERAL_KEYS:
            ephemeral += value
        else:  # audio, service-tier keys...: the general path
            return None
    return read, ephemeral or write


def _fast_reasoning(details: object) -> int | None:
    if not details:
        return 0
    if type(details) is not dict or details.keys() != {"reasoning"}:
        return None
    reasoning = details["reasoning"]
    return reasoning if type(reasoning) is int and reasoning >= 0 else None


def _draft_of(payload: object) -> Draft:  # noqa: PLR0911 - one branch per type
    # LangChain types first: they are the callback hot path.
    if isinstance(payload, BaseMessage):
        return _from_message(payload)
    if isinstance(payload, ChatGeneration):
        return _from_message(payload.message)
    if isinstance(payload, LLMResult):
        return _from_llm_result(payload)
    if isinstance(payload, Mapping):
        return parse_response(payload)
    if payload is None or isinstance(payload, (str, bytes, bytearray)):
        msg = f"payload is {type(payload).__name__}"
        raise no_usage(msg)
    if isinstance(payload, (list, tuple, Iterator)):
        return _from_stream(payload)
    mapping = as_mapping(payload)  # Generation, SDK objects, plain objects
    if mapping is not None:
        return parse_response(mapping)
    if isinstance(payload, Iterable):
        return _from_stream(payload)
    msg = f"unsupported payload type {type(payload).__name__}"
    raise no_usage(msg)


def _from_message(message: BaseMessage) -> Draft:
    metadata = message.response_metadata
    usage_metadata = getattr(message, "usage_metadata", None)
    if usage_metadata is not None:
        draft = parse_usage_metadata(usage_metadata)
        draft.raw_keys = frozenset(usage_metadata)
    elif not metadata:
        msg = "usage_metadata is None"
        raise no_usage(msg)
    else:
        try:
            draft = parse_response(metadata)
        except UsageProblem as problem:
            if problem.kind != "no usage":
                raise
            msg = f"usage_metadata is None; response_metadata: {problem.reason}"
            raise no_usage(msg) from None
    if metadata:
        _label_from_metadata(draft, metadata)
    return draft


def _label_from_metadata(draft: Draft, metadata: Mapping[str, Any]) -> None:
    model = metadata.get("model_name") or metadata.get("model")
    if isinstance(model, str) and model:
        draft.model = model
    provider = metadata.get("model_provider") or metadata.get("ls_provider")
    if isinstance(provider, str) and provider:
        draft.provider = canonical_label(provider)
    raw = metadata.get("usage")
    if isinstance(raw, Mapping) and raw.get("server_tool_use"):
        # langchain-anthropic keeps the raw usage: server tools inflate the input.
        draft.flags.update(_server_tool_flags(raw))


def _server_tool_flags(usage: Mapping[str, Any]) -> set[str]:
    """``server_tool_input`` if any server tool ran (a positive request count)."""
    tools = as_mapping(usage.get("server_tool_use"))
    if tools is None:
        return set()
    used = any(type(v) is int and v > 0 for v in tools.values())
    return {"server_tool_input"} if used else set()


def _unless_no_usage(parse: Callable[[_T], Draft], item: _T) -> Draft | None:
    """``parse(item)``, or ``None`` when it has no usage; rejections propagate."""
    try:
        return parse(item)
    except UsageProblem as problem:
        if problem.kind != "no usage":
            raise
        return None


def _from_llm_result(result: LLMResult) -> Draft:
    reasons = []
    generations = result.generations
    if generations and generations[0]:
        first = generations[0][0]  # every candidate repeats the usage: never sum
        try:
            if isinstance(first, ChatGeneration):
                draft = _from_message(first.message)
            else:
                draft = parse_response({"generation_info": first.generation_info})
        except UsageProblem as problem:
            if problem.kind != "no usage":
                raise
            reasons.append(problem.reason)
        else:
            if draft.model is None and result.llm_output:
                model = result.llm_output.get("model_name")
                draft.model = model if isinstance(model, str) and model else None
            return draft
    if result.llm_output:
        try:
            return parse_response(result.llm_output)
        except UsageProblem as problem:
            if problem.kind != "no usage":
                raise
            reasons.append(f"llm_output: {problem.reason}")
    raise no_usage("; ".join(reasons) or "LLMResult has no generations")


def _message_of(item: object) -> BaseMessage | None:
    if isinstance(item, BaseMessage):
        return item
    if isinstance(item, ChatGeneration):
        return item.message
    if isinstance(item, LLMResult) and item.generations and item.generations[0]:
        first = item.generations[0][0]
        return first.message if isinstance(first, ChatGeneration) else None
    return None


def _from_stream(items: Iterable[object]) -> Draft:
    chunks = list(itertools.islice(items, _MAX_STREAM_ITEMS + 1))
    if len(chunks) > _MAX_STREAM_ITEMS:
        msg = f"stream has more than {_MAX_STREAM_ITEMS} items"
        raise rejected(msg)
    messages = [m for m in map(_message_of, chunks) if m is not None]
    if messages:
        return _combine_messages(messages)
    events = [m for m in map(as_mapping, chunks) if m is not None]
    if not events:
        msg = "stream has no events" if not chunks else "stream has no usable events"
        raise no_usage(msg)
    if any(e.get("type") in _ANTHROPIC_EVENTS for e in events):
        return _combine_anthropic(events)
    return _combine_cumulative(events)


def _combine_messages(messages: list[BaseMessage]) -> Draft:
    """LangChain chunks: sum them as LangChain's merge does, unless cumulative."""
    parsed = (_unless_no_usage(_from_message, m) for m in messages)
    drafts = [d for d in parsed if d is not None]
    if not drafts:
        msg = "no chunk carries usage_metadata"
        raise no_usage(msg)
    if len(drafts) == 1:
        return drafts[0]
    first = drafts[0].input
    if first > 0 and all(d.input == first for d in drafts):
        # Every chunk repeats the whole prompt: counts are cumulative, the
        # last one is the call's usage. Summing would multiply it.
        last = drafts[-1]
        for draft in drafts:
            last.flags.update(draft.flags)
        last.flags.add("cumulative_stream")
        return last
    return _sum(drafts)


def _sum(drafts: list[Draft]) -> Draft:
    merged = Draft(sum(d.input for d in drafts))
    merged.output = sum(d.output for d in drafts)
    totals = [d.total for d in drafts]
    merged.total = None if None in totals else sum(t or 0 for t in totals)
    merged.cache_read = sum(d.cache_read for d in drafts)
    merged.cache_creation = sum(d.cache_creation for d in drafts)
    merged.reasoning = sum(d.reasoning for d in drafts)
    merged.billed_extra = sum(d.billed_extra for d in drafts)
    for draft in drafts:
        for key, value in draft.extras.items():
            merged.extras[key] = merged.extras.get(key, 0) + value
        merged.flags.update(draft.flags)
        merged.raw_keys |= draft.raw_keys
        merged.provider = merged.provider or draft.provider
        merged.model = draft.model or merged.model
    return merged


def _combine_anthropic(events: list[Mapping[str, Any]]) -> Draft:
    """Input and cache from ``message_start``; output from the last delta."""
    start, deltas = _anthropic_parts(events)
    usage = None if start is None else as_mapping(start.get("usage"))
    if usage is None:
        if not deltas or deltas[-1].get("input_tokens") is None:
            msg = "anthropic stream has no message_start usage"
            raise no_usage(msg)
        usage = deltas[-1]  # new-style cumulative delta: the best there is
    draft = parse_anthropic(usage)
    draft.raw_keys = frozenset(k for k in usage if isinstance(k, str))
    model = None if start is None else start.get("model")
    draft.model = model if isinstance(model, str) and model else None
    prompt = count(usage.get("input_tokens"), "message_start.usage.input_tokens")
    for delta in deltas:
        later = count(delta.get("input_tokens"), "message_delta.usage.input_tokens")
        if later is not None and prompt is not None and later > prompt:
            # Server tools fed results back: the final input is not the prompt.
            draft.flags.add("server_tool_input")
        draft.flags.update(_server_tool_flags(delta))
    if deltas:
        output = count(deltas[-1].get("output_tokens"), "message_delta.output_tokens")
        draft.output = draft.output if output is None else output
    return draft


def _anthropic_parts(
    events: list[Mapping[str, Any]],
) -> tuple[Mapping[str, Any] | None, list[Mapping[str, Any]]]:
    """The ``message_start`` message and the usage of each ``message_delta``."""
    start: Mapping[str, Any] | None = None
    deltas = []
    for event in events:
        kind = event.get("type")
        if kind == "message_start" and start is None:
            start = as_mapping(event.get("message"))
        elif kind == "message_delta":
            usage = as_mapping(event.get("usage"))
            if usage is not None:
                deltas.append(usage)
    return start, deltas


def _combine_cumulative(events: list[Mapping[str, Any]]) -> Draft:
    """Take the last event with usage; never sum cumulative counts."""
    found: Draft | None = None
    for event in reversed(events):
        draft = _unless_no_usage(parse_response, event)
        if draft is None:
            continue
        if found is not None:
            found.flags.add("cumulative_stream")
            break
        found = draft
    if found is None:
        msg = "no stream event carries usage"
        raise no_usage(msg)
    return found


def _finish(draft: Draft, provider: str | None) -> TokenUsage:
    """Check the counts against each other and freeze them."""
    inp, out = draft.input, draft.output
    if inp > MAX_COUNT or out > MAX_COUNT:
        msg = f"input_tokens ({inp}) or output_tokens ({out}) exceeds {MAX_COUNT}"
        raise rejected(msg)
    if inp == 0 and out == 0:
        msg = "input_tokens and output_tokens are 0"
        raise no_usage(msg)
    if draft.cache_read + draft.cache_creation > inp:
        msg = (
            f"cache_read ({draft.cache_read}) + cache_creation "
            f"({draft.cache_creation}) > input_tokens ({inp})"
        )
        raise rejected(msg)
    if draft.reasoning > out:
        msg = f"reasoning ({draft.reasoning}) > output_tokens ({out})"
        raise rejected(msg)
    extras = draft.extras
    if extras and (
        extras.get("input_audio", 0) > inp or extras.get("output_audio", 0) > out
    ):
        msg = "audio tokens exceed their input_tokens or output_tokens"
        raise rejected(msg)
    total = draft.total
    if total is None:
        total = inp + out + draft.billed_extra
    elif total < inp + out:
        msg = f"total_tokens ({total}) < input_tokens ({inp}) + output_tokens ({out})"
        raise rejected(msg)
    return TokenUsage(
        inp,
        out,
        total,
        draft.cache_read,
        draft.cache_creation,
        draft.reasoning,
        provider or draft.provider,
        draft.model,
        MappingProxyType(extras) if extras else _NO_EXTRAS,
        draft.raw_keys,
        frozenset(draft.flags),
    )
