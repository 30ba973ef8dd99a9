"""What a calibrated counter learned, as events a store can log and replay.

Learning is additive: a report adds an observation to the regression, a count
to the ledger, a residual to the interval. So knowledge persists and spreads
between processes as an append-only log of `LearnEvent` records: each process
appends what it learned and replays what the others appended. Appends never
conflict, so concurrent writers lose nothing.

An event holds numbers, hashes, model names and rejection reasons; never
prompt text.

| kind | values |
|---|---|
| ``fit`` | the regression's feature vector, then residual and local tokens |
| ``prompt`` | tool-set fingerprint, first digest, last digest, prompt hash, tokens |
| ``message`` | message digest, cost |
| ``base`` | tool-set fingerprint, base cost |
| ``residual`` | relative residual of an estimate |
| ``error`` | local and calibrated relative error of a prediction |
| ``reply`` | a leftover behind the reply-cost correction |
| ``reject`` | the reason a report was not learned from |
| ``usage`` | usage sums: input, output, total, cache read and creation, ... |
| ``meta`` | provider, then aliases of the model |
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Final

from langchain_tokencal.errors import TokenCalError

__all__ = ["EVENT_KINDS", "EventError", "LearnEvent", "decode_event", "encode_event"]

EVENT_KINDS: Final = frozenset(
    {
        "fit",
        "prompt",
        "message",
        "base",
        "residual",
        "error",
        "reply",
        "reject",
        "usage",
        "meta",
    }
)

Value = int | float | str


class EventError(TokenCalError, ValueError):
    """A stored event cannot be decoded (corrupt or from an unknown version)."""


@dataclass(frozen=True, slots=True)
class LearnEvent:
    """One thing a counter learned, in a form any store can keep.

    Attributes:
        model: The model key the event belongs to.
        kind: One of `EVENT_KINDS`.
        values: Numbers (and, for ``reject`` and ``meta``, short strings).
        origin: The process or handler that learned it, so a process can skip
            its own events when it replays a shared log.
        at: Wall-clock time (seconds since the epoch) it was learned.

    Example:
        ```python
        from langchain_tokencal.events import LearnEvent, decode_event, encode_event

        event = LearnEvent("gpt-4o", "message", (1234, 17.5), "worker-1", 0.0)
        assert decode_event(encode_event(event)) == event
        ```
    """

    model: str
    kind: str
    values: tuple[Value, ...]
    origin: str
    at: float


def encode_event(event: LearnEvent) -> str:
    """One compact JSON line for an event."""
    return json.dumps(
        [event.model, event.kind, list(event.values), event.origin, event.at],
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    )


def decode_event(line: str | bytes) -> LearnEvent:
    """Parse a line written by `encode_event`.

    Raises:
        EventError: If the line is not a well-formed event.
    """
    try:
        model, kind, values, origin, at = json.loads(line)
    except (ValueError, TypeError) as err:
        msg = f"not an event: {str(line)[:80]!r}"
        raise EventError(msg) from err
    if (
        not isinstance(model, str)
        or kind not in EVENT_KINDS
        or not isinstance(values, list)
        or not isinstance(origin, str)
        or isinstance(at, bool)
        or not isinstance(at, (int, float))
    ):
        msg = f"malformed event: {str(line)[:80]!r}"
        raise EventError(msg)
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float, str)):
            msg = f"malformed event value {v!r}"
            raise EventError(msg)
        if isinstance(v, float) and not math.isfinite(v):
            msg = f"non-finite event value {v!r}"
            raise EventError(msg)
    return LearnEvent(model, kind, tuple(values), origin, float(at))
