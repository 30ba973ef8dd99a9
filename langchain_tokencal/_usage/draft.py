"""The draft: counts read from a payload, not yet checked against each other.

Every parser fills a `Draft` in LangChain's convention (input includes cache
reads and writes, output includes reasoning); `finish` checks the counts against
each other and freezes them into a `TokenUsage`. Reading is defensive: `count`
validates one number and `as_mapping` views a foreign object as a mapping.

Problems are raised as `UsageProblem` with kind ``"no usage"`` or ``"rejected"``;
`parse_usage` turns them into ``None`` plus a reason.
"""

from __future__ import annotations

import dataclasses
import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final, TypeVar

from langchain_core.messages import BaseMessage

from langchain_tokencal._usage.record import NO_EXTRAS, TokenUsage

__all__ = [
    "MAX_COUNT",
    "Draft",
    "UsageProblem",
    "add_extra",
    "as_mapping",
    "count",
    "finish",
    "first",
    "items",
    "keys",
    "no_usage",
    "optional",
    "rejected",
    "required",
    "show",
    "unless_no_usage",
]

MAX_COUNT: Final = 10**9
"""Larger counts are not plausible for one call: treated as corrupt."""


class UsageProblem(Exception):  # noqa: N818 - internal signal, never leaves _usage
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
    """Normalized but unchecked counts; `finish` validates and freezes them."""

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


def show(value: Any) -> str:
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
        msg = f"{name} ({show(value)}) {what}"
        raise rejected(msg)
    if value is None:
        return None
    if isinstance(value, bool):
        msg = f"{name} is a boolean ({value}), expected an integer"
        raise rejected(msg)
    if isinstance(value, float):
        if not (math.isfinite(value) and value.is_integer()):
            msg = f"{name} ({show(value)}) is not an integer"
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
    msg = f"{name} is a {kind} ({show(value)}), expected an integer"
    raise rejected(msg)


def required(u: Mapping[str, Any], key: str, name: str | None = None) -> int:
    """``u[key]`` as a count; absent is "no usage"."""
    name = name or key
    value = count(u.get(key), name)
    if value is None:
        msg = f"{name} is missing"
        raise no_usage(msg)
    return value


def optional(u: Mapping[str, Any] | None, key: str, name: str | None = None) -> int:
    """``u[key]`` as a count; absent (or no ``u``) is 0."""
    if u is None:
        return 0
    value = count(u.get(key), name or key)
    return 0 if value is None else value


def first(u: Mapping[str, Any], names: tuple[str, ...], name: str) -> int | None:
    """The first present key among synonyms: never add two names of one count."""
    for key in names:
        value = count(u.get(key), f"{name}.{key}")
        if value is not None:
            return value
    return None


def add_extra(draft: Draft, name: str, value: Any) -> None:
    """Keep a provider addition; malformed extras are dropped, not fatal."""
    try:
        number = count(value, name)
    except UsageProblem:
        return
    if number:
        draft.extras[name] = draft.extras.get(name, 0) + number


def keys(u: Mapping[str, Any]) -> frozenset[str]:
    """The string keys of a usage object (its ``raw_keys``)."""
    return frozenset(k for k in u if isinstance(k, str))


def items(details: Any) -> list[tuple[str, Any]]:
    """The string-keyed items of a details object, or none if it is no mapping."""
    mapping = as_mapping(details)
    if mapping is None:
        return []
    return [(k, v) for k, v in mapping.items() if isinstance(k, str)]


_SCALARS: Final = (str, bytes, bytearray, int, float, list, tuple, set, frozenset)


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


def finish(draft: Draft, provider: str | None) -> TokenUsage:
    """Check the counts against each other and freeze them.

    Raises:
        UsageProblem: the counts are zero or contradict each other.
    """
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
    if total > MAX_COUNT:
        # The bound a reported total gets holds for a computed one too.
        msg = f"total_tokens ({total}) exceeds {MAX_COUNT}"
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
        MappingProxyType(extras) if extras else NO_EXTRAS,
        draft.raw_keys,
        frozenset(draft.flags),
    )


_T = TypeVar("_T")


def unless_no_usage(parse: Callable[[_T], Draft], item: _T) -> Draft | None:
    """``parse(item)``, or ``None`` when it has no usage; rejections propagate."""
    try:
        return parse(item)
    except UsageProblem as problem:
        if problem.kind != "no usage":
            raise
        return None
