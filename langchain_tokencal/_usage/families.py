"""Provider rules behind `langchain_tokencal._usage.parse` (private).

Everything here turns one raw mapping (a response, a stream event, a bare usage
object) into a `Draft`: counts already in LangChain's convention (input includes
cache reads and writes, output includes reasoning) but not yet checked against
each other. `usage.py` owns the public record, the LangChain objects, streams and
the final consistency checks.

Problems are raised as `UsageProblem` with kind ``"no usage"`` or ``"rejected"``;
the public functions turn them into ``None`` plus a reason. Only known keys are
followed, to a bounded depth, so cycles and deep junk cannot recurse forever.
"""

from __future__ import annotations

import dataclasses
import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from langchain_core.messages import BaseMessage

from langchain_tokencal._providers import canonical_label

__all__ = [
    "MAX_COUNT",
    "Draft",
    "UsageProblem",
    "as_mapping",
    "count",
    "no_usage",
    "parse_anthropic",
    "parse_response",
    "parse_usage_metadata",
    "rejected",
]

MAX_COUNT: Final = 10**9
"""Larger counts are not plausible for one call: treated as corrupt."""

_MAX_DEPTH: Final = 6
"""Envelopes nest at most ~4 deep (llm_output > token_usage, x_groq > usage...)."""
_MAX_VISITS: Final = 64
"""Real payloads need fewer than 10 mappings examined per parse."""

# Where usage hides inside an envelope, most specific first. The recursion tries
# each in turn, so a response_metadata dict or a Bedrock `metadata` stream event
# needs no special case.
_CONTAINERS: Final = (
    "usage_metadata",
    "usageMetadata",
    "usage",
    "token_usage",
    "x_groq",
    "meta",
    "metadata",
    "amazon-bedrock-invocationMetrics",
    "response_metadata",
    "llm_output",
    "generation_info",
    "response",
    "message",
    "delta",
)
_MODEL_KEYS: Final = ("model_name", "model", "modelVersion", "model_version")
_ANTHROPIC_MARKERS: Final = frozenset(
    {
        "cache_creation_input_tokens",
        "cache_read_input_tokens",
        "cache_creation",
        "server_tool_use",
        "service_tier",
    }
)
_GROQ_MARKERS: Final = frozenset({"queue_time", "prompt_time", "completion_time"})
_EPHEMERAL: Final = ("ephemeral_5m_input_tokens", "ephemeral_1h_input_tokens")


class UsageProblem(Exception):  # noqa: N818 - internal signal, never escapes usage.py
    """Why a payload yields no usable record; ``str()`` is the public reason."""

    def __init__(self, kind: str, reason: str) -> None:
        """Keep the kind (``"no usage"`` or ``"rejected"``) and the reason."""
        super().__init__(f"{kind}: {reason}")
        self.kind = kind
        self.reason = reason


def no_usage(reason: str) -> UsageProblem:
    """The payload carries no usage (not an error in the data)."""
    return UsageProblem("no usage", reason)


def rejected(reason: str) -> UsageProblem:
    """The payload carries usage that cannot be trusted."""
    return UsageProblem("rejected", reason)


@dataclass(slots=True)
class Draft:
    """Normalized but unchecked counts; `usage.py` validates and freezes them."""

    input: int
    output: int = 0
    total: int | None = None
    cache_read: int = 0
    cache_creation: int = 0
    reasoning: int = 0
    billed_extra: int = 0  # billed tokens outside input and output (Gemini tool use)
    provider: str | None = None
    model: str | None = None
    extras: dict[str, int] = field(default_factory=dict)
    flags: set[str] = field(default_factory=set)
    raw_keys: frozenset[str] = frozenset()


def _show(value: Any) -> str:
    """Short repr for reasons; huge ints would raise on str() past 4300 digits."""
    if isinstance(value, int) and value.bit_length() > 64:  # noqa: PLR2004 - 2**64
        return "a number with more than 19 digits"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."  # noqa: PLR2004 - width


def count(value: Any, name: str) -> int | None:
    """Validate one token count; ``None`` means absent.

    Integral floats (``12.0``) are accepted; booleans, strings (even ``"12"``:
    no provider sends them), NaN, fractions, negatives and values above
    `MAX_COUNT` are rejected.
    """
    if type(value) is int:  # the hot path: a plain int
        if 0 <= value <= MAX_COUNT:
            return value
        what = "is negative" if value < 0 else f"exceeds {MAX_COUNT}"
        msg = f"{name} ({_show(value)}) {what}"
        raise rejected(msg)
    if value is None:
        return None
    if isinstance(value, bool):
        msg = f"{name} is a boolean ({value}), expected an integer"
        raise rejected(msg)
    if isinstance(value, float):
        if not (math.isfinite(value) and value.is_integer()):
            msg = f"{name} ({_show(value)}) is not an integer"
            raise rejected(msg)
        return count(int(value), name)
    if isinstance(value, int):  # IntEnum and other int subclasses
        return count(int(value), name)
    if not isinstance(value, (str, bytes)) and hasattr(type(value), "__index__"):
        try:  # numpy integers and other integer-likes
            return count(operator.index(value), name)
        except (TypeError, ValueError):
            pass
    kind = type(value).__name__
    msg = f"{name} is a {kind} ({_show(value)}), expected an integer"
    raise rejected(msg)


def _required(u: Mapping[str, Any], key: str, name: str | None = None) -> int:
    name = name or key
    value = count(u.get(key), name)
    if value is None:
        msg = f"{name} is missing"
        raise no_usage(msg)
    return value


def _optional(u: Mapping[str, Any] | None, key: str, name: str | None = None) -> int:
    if u is None:
        return 0
    value = count(u.get(key), name or key)
    return 0 if value is None else value


def _first(u: Mapping[str, Any], keys: tuple[str, ...], name: str) -> int | None:
    """The first present key among synonyms: never add two names of one count."""
    for key in keys:
        value = count(u.get(key), f"{name}.{key}")
        if value is not None:
            return value
    return None


def _add_extra(draft: Draft, name: str, value: Any) -> None:
    """Keep a provider addition; malformed extras are dropped, not fatal."""
    try:
        number = count(value, name)
    except UsageProblem:
        return
    if number:
        draft.extras[name] = draft.extras.get(name, 0) + number


def _keys(u: Mapping[str, Any]) -> frozenset[str]:
    return frozenset(k for k in u if isinstance(k, str))


def as_mapping(obj: Any) -> Mapping[str, Any] | None:
    """A read-only view of ``obj`` as a mapping, or ``None`` if it has no fields.

    SDK objects are converted with ``model_dump()``/``to_dict()``; plain objects
    through their attributes. LangChain messages are read by attribute (no dump).
    """
    if isinstance(obj, Mapping):
        return obj
    if obj is None or isinstance(obj, _SCALARS):
        return None
    if isinstance(obj, BaseMessage):
        return {
            "usage_metadata": getattr(obj, "usage_metadata", None),
            "response_metadata": obj.response_metadata,
        }
    result: Any = None
    dump = getattr(obj, "model_dump", None) or getattr(obj, "to_dict", None)
    if callable(dump):
        try:
            result = dump()
        except Exception:  # noqa: BLE001 - a foreign object's dump may fail any way
            result = None
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        result = {f.name: getattr(obj, f.name, None) for f in dataclasses.fields(obj)}
    else:
        result = getattr(obj, "__dict__", None)
    return result if isinstance(result, Mapping) else None


_SCALARS: Final = (str, bytes, bytearray, int, float, list, tuple, set, frozenset)


# --- one parser per key family ------------------------------------------------


def parse_usage_metadata(u: Mapping[str, Any]) -> Draft:
    """LangChain `UsageMetadata`: already normalized, details are subsets.

    Note:
        langchain-openai prefixes details with a service tier
        (``priority_cache_read``); langchain-anthropic splits writes by TTL in
        ``ephemeral_*_input_tokens`` and, by version, zeroes or repeats
        ``cache_creation``: the ephemeral sum wins when positive.
    """
    draft = Draft(_required(u, "input_tokens"))
    draft.output = _optional(u, "output_tokens")
    draft.total = count(u.get("total_tokens"), "total_tokens")
    cost = u.get("total_cost")
    if cost == 0 and isinstance(cost, (int, float)) and not isinstance(cost, bool):
        draft.flags.add("llm_cache_hit")
    details = u.get("input_token_details")
    if details:
        _input_details(draft, details)
    details = u.get("output_token_details")
    if details:
        _output_details(draft, details)
    return draft


def _input_details(draft: Draft, details: Any) -> None:
    creation = ephemeral = 0
    for key, value in _items(details):
        if key == "cache_read" or key.endswith("_cache_read"):
            draft.cache_read += count(value, f"input_token_details.{key}") or 0
        elif key == "cache_creation" or key.endswith("_cache_creation"):
            creation += count(value, f"input_token_details.{key}") or 0
        elif key in _EPHEMERAL:
            ephemeral += count(value, f"input_token_details.{key}") or 0
        elif key == "audio":
            _add_extra(draft, "input_audio", value)
    draft.cache_creation = ephemeral or creation


def _output_details(draft: Draft, details: Any) -> None:
    for key, value in _items(details):
        if key == "reasoning" or key.endswith("_reasoning"):
            draft.reasoning += count(value, f"output_token_details.{key}") or 0
        elif key == "audio":
            _add_extra(draft, "output_audio", value)


def _items(details: Any) -> list[tuple[str, Any]]:
    mapping = as_mapping(details)
    if mapping is None:
        return []
    return [(k, v) for k, v in mapping.items() if isinstance(k, str)]


def _parse_openai(u: Mapping[str, Any], names: tuple[str, str, str, str]) -> Draft:
    """Chat Completions and Responses: one shape under two sets of names."""
    inp, out, inp_details, out_details = names
    draft = Draft(_required(u, inp), provider="openai")
    draft.output = _optional(u, out)
    draft.total = count(u.get("total_tokens"), "total_tokens")
    inputs = as_mapping(u.get(inp_details))
    outputs = as_mapping(u.get(out_details))
    draft.cache_read = _optional(
        inputs, "cached_tokens", f"{inp_details}.cached_tokens"
    )
    draft.cache_creation = _optional(
        inputs, "cache_write_tokens", f"{inp_details}.cache_write_tokens"
    ) or _optional(u, "cache_write_tokens")
    draft.reasoning = _optional(
        outputs, "reasoning_tokens", f"{out_details}.reasoning_tokens"
    )
    # Audio and prediction tokens are subsets of their parent: extras only.
    for details, key, extra in (
        (inputs, "audio_tokens", "input_audio"),
        (outputs, "audio_tokens", "output_audio"),
        (outputs, "accepted_prediction_tokens", "prediction_accepted"),
        (outputs, "rejected_prediction_tokens", "prediction_rejected"),
    ):
        if details is not None:
            _add_extra(draft, extra, details.get(key))
    return draft


_CHAT_NAMES: Final = (
    "prompt_tokens",
    "completion_tokens",
    "prompt_tokens_details",
    "completion_tokens_details",
)
_RESPONSES_NAMES: Final = (
    "input_tokens",
    "output_tokens",
    "input_tokens_details",
    "output_tokens_details",
)


def _parse_openai_chat(u: Mapping[str, Any]) -> Draft:
    draft = _parse_openai(u, _CHAT_NAMES)
    hit = count(u.get("prompt_cache_hit_tokens"), "prompt_cache_hit_tokens")
    miss = count(u.get("prompt_cache_miss_tokens"), "prompt_cache_miss_tokens")
    if hit is not None or miss is not None:
        draft.provider = "deepseek"
        if hit is not None and miss is not None and hit + miss != draft.input:
            msg = (
                f"prompt_cache_hit_tokens ({hit}) + prompt_cache_miss_tokens "
                f"({miss}) != prompt_tokens ({draft.input})"
            )
            raise rejected(msg)
        draft.cache_read = draft.cache_read if hit is None else hit
        _add_extra(draft, "cache_miss", miss)
    elif not _GROQ_MARKERS.isdisjoint(u):
        draft.provider = "groq"
    return draft


def _parse_openai_responses(u: Mapping[str, Any]) -> Draft:
    return _parse_openai(u, _RESPONSES_NAMES)


def parse_anthropic(u: Mapping[str, Any]) -> Draft:
    """Anthropic Messages usage: ``input_tokens`` excludes the cache."""
    uncached = _required(u, "input_tokens")
    read = _optional(u, "cache_read_input_tokens")
    write = _optional(u, "cache_creation_input_tokens")
    split = as_mapping(u.get("cache_creation"))
    if split is not None:
        by_ttl = sum(_optional(split, k, f"cache_creation.{k}") for k in _EPHEMERAL)
        # The TTL split and the total describe the same tokens: one, never both.
        write = write or by_ttl
    draft = Draft(uncached + read + write, provider="anthropic")
    draft.output = _optional(u, "output_tokens")
    draft.cache_read = read
    draft.cache_creation = write
    if split is not None:
        _add_extra(draft, "cache_creation_5m", split.get("ephemeral_5m_input_tokens"))
        _add_extra(draft, "cache_creation_1h", split.get("ephemeral_1h_input_tokens"))
    tools = as_mapping(u.get("server_tool_use"))
    if tools is not None:
        for key, value in _items(tools):
            _add_extra(draft, f"server_tool_{key}", value)
        if any(k.startswith("server_tool_") for k in draft.extras):
            # Tool results were fed back inside the request: input is not the prompt.
            draft.flags.add("server_tool_input")
    return draft


def _parse_google(u: Mapping[str, Any], *, snake: bool) -> Draft:
    """Gemini: thoughts are outside candidates; tool-use prompt outside prompt."""

    def key(camel: str) -> str:
        return _SNAKE[camel] if snake else camel

    prompt = key("promptTokenCount")
    draft = Draft(_required(u, prompt), provider="google")
    candidates = _optional(u, key("candidatesTokenCount"))
    thoughts = _optional(u, key("thoughtsTokenCount"))
    draft.output = candidates + thoughts
    draft.reasoning = thoughts
    draft.cache_read = _optional(u, key("cachedContentTokenCount"))
    tool_use = _optional(u, key("toolUsePromptTokenCount"))
    # Billed as input but not part of promptTokenCount: kept out of input (the
    # prompt we sent) and in the total.
    draft.billed_extra = tool_use
    _add_extra(draft, "tool_use_prompt", tool_use)
    draft.total = count(u.get(key("totalTokenCount")), key("totalTokenCount"))
    for details, prefix in (
        (key("promptTokensDetails"), "input_"),
        (key("candidatesTokensDetails"), "output_"),
    ):
        _add_modalities(draft, u.get(details), prefix, snake=snake)
    return draft


_SNAKE: Final = {
    "promptTokenCount": "prompt_token_count",
    "candidatesTokenCount": "candidates_token_count",
    "thoughtsTokenCount": "thoughts_token_count",
    "cachedContentTokenCount": "cached_content_token_count",
    "toolUsePromptTokenCount": "tool_use_prompt_token_count",
    "totalTokenCount": "total_token_count",
    "promptTokensDetails": "prompt_tokens_details",
    "candidatesTokensDetails": "candidates_tokens_details",
}


def _add_modalities(draft: Draft, entries: Any, prefix: str, *, snake: bool) -> None:
    """``[{modality: AUDIO, tokenCount: 12}]`` -> extras ``input_audio=12``.

    Informational: malformed entries are skipped.
    """
    if not isinstance(entries, (list, tuple)):
        return
    count_key = "token_count" if snake else "tokenCount"
    for entry in entries[:32]:  # there are five modalities; bound junk
        item = as_mapping(entry)
        if item is None:
            continue
        modality = item.get("modality")
        if isinstance(modality, str) and modality:
            _add_extra(draft, prefix + modality.lower(), item.get(count_key))


def _parse_bedrock(u: Mapping[str, Any]) -> Draft:
    """Bedrock Converse: ``inputTokens`` excludes cache reads and writes."""
    uncached = _first(u, ("inputTokens", "inputTokenCount"), "usage")
    if uncached is None:
        msg = "usage.inputTokens is missing"
        raise no_usage(msg)
    read = _first(u, ("cacheReadInputTokens", "cacheReadInputTokenCount"), "usage")
    write = _first(u, ("cacheWriteInputTokens", "cacheWriteInputTokenCount"), "usage")
    draft = Draft(uncached + (read or 0) + (write or 0), provider="bedrock")
    draft.output = _first(u, ("outputTokens", "outputTokenCount"), "usage") or 0
    draft.total = count(u.get("totalTokens"), "usage.totalTokens")
    draft.cache_read = read or 0
    draft.cache_creation = write or 0
    return draft


def _parse_ollama(u: Mapping[str, Any]) -> Draft:
    if "done" in u and u.get("done") is not True:
        msg = "ollama response is not final (done is not true)"
        raise no_usage(msg)
    if u.get("prompt_eval_count") is None:
        msg = "ollama prompt_eval_count is missing (old versions omit it on cache)"
        raise no_usage(msg)
    draft = Draft(_required(u, "prompt_eval_count"), provider="ollama")
    draft.output = _optional(u, "eval_count")
    return draft


def _parse_cohere(u: Mapping[str, Any]) -> Draft:
    """Cohere: ``tokens`` were processed (the usage); ``billed_units`` are billed."""
    tokens = as_mapping(u.get("tokens"))
    if tokens is None or tokens.get("input_tokens") is None:
        msg = "cohere usage has no tokens.input_tokens (billed_units differ)"
        raise no_usage(msg)
    draft = Draft(
        _required(tokens, "input_tokens", "tokens.input_tokens"), provider="cohere"
    )
    draft.output = _optional(tokens, "output_tokens", "tokens.output_tokens")
    draft.cache_read = _optional(u, "cached_tokens")
    billed = as_mapping(u.get("billed_units"))
    if billed is not None:
        for key, value in _items(billed):
            name = key.removesuffix("_tokens")
            _add_extra(draft, f"billed_{name}", value)
    return draft


def _parse_generic(u: Mapping[str, Any]) -> Draft:
    """Bare ``input_tokens``/``output_tokens``: every convention agrees on it."""
    draft = Draft(_required(u, "input_tokens"))
    draft.output = _optional(u, "output_tokens")
    draft.total = count(u.get("total_tokens"), "total_tokens")
    return draft


def _classify(u: Mapping[str, Any]) -> _Parser | None:
    """Pick the parser from the key family; ``None`` if ``u`` holds no counts."""
    if "input_tokens" in u or "output_tokens" in u:
        return _input_tokens_family(u)
    for markers, parser in _FAMILIES:
        if not markers.isdisjoint(u):
            return parser
    if "done" in u and "created_at" in u:  # a non-final Ollama chunk
        return _parse_ollama
    return None


def _input_tokens_family(u: Mapping[str, Any]) -> _Parser:
    """Four conventions share ``input_tokens``; their detail keys tell them apart."""
    if not _RESPONSES_MARKERS.isdisjoint(u):
        return _parse_openai_responses
    if not _LANGCHAIN_MARKERS.isdisjoint(u):
        return parse_usage_metadata
    if not _ANTHROPIC_MARKERS.isdisjoint(u):
        return parse_anthropic
    return _parse_generic


def _parse_google_camel(u: Mapping[str, Any]) -> Draft:
    return _parse_google(u, snake=False)


def _parse_google_snake(u: Mapping[str, Any]) -> Draft:
    return _parse_google(u, snake=True)


_Parser = Callable[[Mapping[str, Any]], Draft]
_RESPONSES_MARKERS: Final = frozenset({"input_tokens_details", "output_tokens_details"})
_LANGCHAIN_MARKERS: Final = frozenset(
    {"input_token_details", "output_token_details", "total_cost"}
)
_FAMILIES: Final[tuple[tuple[frozenset[str], _Parser], ...]] = (
    (frozenset({"prompt_tokens", "completion_tokens"}), _parse_openai_chat),
    (frozenset({"promptTokenCount", "candidatesTokenCount"}), _parse_google_camel),
    (
        frozenset({"prompt_token_count", "candidates_token_count"}),
        _parse_google_snake,
    ),
    (
        frozenset({"inputTokens", "outputTokens", "inputTokenCount"}),
        _parse_bedrock,
    ),
    (frozenset({"prompt_eval_count", "eval_count"}), _parse_ollama),
    (frozenset({"tokens", "billed_units"}), _parse_cohere),
)


def _model_of(m: Mapping[str, Any]) -> str | None:
    for key in _MODEL_KEYS:
        value = m.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def _envelope_provider(m: Mapping[str, Any], container: str) -> str | None:
    """What an envelope says about the provider of the usage found inside it."""
    if container == "x_groq":
        return "groq"
    kind = m.get("type")
    if kind in ("message", "message_start", "message_delta"):
        return "anthropic"
    if m.get("object") == "response":
        return "openai"
    if isinstance(kind, str) and kind.startswith("response."):
        return "openai"
    return None


class _Budget:
    """How many mappings one parse may still examine.

    Shared or cyclic references would otherwise make the container search
    exponential in its depth.
    """

    __slots__ = ("left",)

    def __init__(self) -> None:
        self.left = _MAX_VISITS

    def spend(self) -> None:
        self.left -= 1
        if self.left < 0:
            msg = f"payload too complex (more than {_MAX_VISITS} nested objects)"
            raise no_usage(msg)


def parse_response(
    m: Mapping[str, Any], depth: int = 0, budget: _Budget | None = None
) -> Draft:
    """Find and normalize the usage in a raw payload (response, event, usage).

    Raises:
        UsageProblem: no usage was found, or it cannot be trusted.
    """
    budget = _Budget() if budget is None else budget
    budget.spend()
    if depth > _MAX_DEPTH:
        msg = "usage nested too deeply"
        raise no_usage(msg)
    parser = _classify(m)
    if parser is None:
        return _search_containers(m, depth, budget)
    draft = parser(m)
    draft.raw_keys = _keys(m)
    draft.model = draft.model or _model_of(m)
    return draft


def _search_containers(m: Mapping[str, Any], depth: int, budget: _Budget) -> Draft:
    """Try each known envelope key in turn; the first one holding usage wins."""
    reason = ""
    for container in _CONTAINERS:
        value = m.get(container)
        inner = as_mapping(value)
        if inner is None:
            if not reason and container in m:
                reason = f"{container} is {_show(value)}"
            continue
        if m.get("type") == "message_delta" and inner.get("input_tokens") is None:
            # Old deltas hold only the output; the input is in message_start.
            reason = "anthropic message_delta has no input_tokens; pass the stream"
            continue
        try:
            draft = parse_response(inner, depth + 1, budget)
        except UsageProblem as problem:
            if problem.kind != "no usage":
                raise
            if budget.left < 0:
                raise
            reason = reason or problem.reason
            continue
        _apply_envelope(draft, m, container)
        return draft
    raise no_usage(reason or "no usage field found")


def _apply_envelope(draft: Draft, m: Mapping[str, Any], container: str) -> None:
    """Label the provider and model from the envelope the usage was found in."""
    hint = _envelope_provider(m, container)
    if hint is not None and (draft.provider in (None, "openai") or hint == "groq"):
        draft.provider = hint
    # A serialized message keeps its labels in response_metadata, not beside usage.
    for source in (m, as_mapping(m.get("response_metadata"))):
        if source is None:
            continue
        provider = source.get("model_provider")
        if isinstance(provider, str) and provider:
            draft.provider = canonical_label(provider)
        draft.model = draft.model or _model_of(source)
