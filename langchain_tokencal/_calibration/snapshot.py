"""A counter's learned state as one JSON document, and back.

A store that has seen a million reports need not be replayed from its first
event: a snapshot holds what that replay leaves behind (the regression's
sufficient statistics, the ledger's live entries in LRU order, the recent
residuals and errors, the rejection counts, the reply-cost correction), and a
new process restores it, then replays only the events after it. Restoring a
snapshot and replaying the rest gives the state the full replay gives.

A snapshot holds numbers, hashes and rejection reasons, never prompt text.
It is read from a shared store, so `restore_state` checks every value (kinds,
finite numbers, ranges, sizes) before it changes anything: a bad snapshot is
refused whole with `ValueError`, and the state is left as it was.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Final

from langchain_tokencal._calibration.ledger import as_hash

if TYPE_CHECKING:
    from collections.abc import Mapping

    from langchain_tokencal._calibration.state import CounterState

__all__ = ["SNAPSHOT_VERSION", "export_state", "restore_state"]

SNAPSHOT_VERSION: Final = 1
# Bounds of what a counter can have learned (as `events.check_event`'s).
_MAX_RATIO: Final = 1e6
_MAX_COUNT: Final = 10**12
_MAX_REASON: Final = 200


def export_state(state: CounterState) -> dict[str, Any]:
    """Everything ``state`` learned, as a JSON-ready dict.

    Example:
        ```python
        import json

        from langchain_tokencal._calibration.create import create_counter

        counter = create_counter("gpt-4o")
        counter.observe(["hello"], 12)
        text = json.dumps(counter.export())
        fresh = create_counter("gpt-4o")
        fresh.restore(json.loads(text))
        assert fresh.count(["hello"]) == counter.count(["hello"])
        ```
    """
    return {
        "v": SNAPSHOT_VERSION,
        "kind": state.kind,
        "calibrator": state.calibrator.export(),
        "ledger": state.ledger.export(),
        "zscores": [list(z) for z in state.zscores],
        "errors": [x for pair in state.errors for x in pair],
        "rejected": dict(state.rejected),
        "repeats": state.repeats,
        "replies": list(state.replies),
        "reply_adjust": state.reply_adjust,
        "leftovers": list(state.leftovers),
        "error_ema": state.error_ema,
    }


def restore_state(state: CounterState, data: Mapping[str, Any]) -> None:
    """Replace what a fresh ``state`` knows by a snapshot of `export_state`.

    Raises:
        ValueError: A snapshot of another version, or any value of the wrong
            kind, shape or range; ``state`` is then unchanged.
    """
    try:
        parsed = _parse(state, data)
    except (TypeError, KeyError, AttributeError, OverflowError) as err:
        msg = f"a malformed snapshot ({type(err).__name__}: {err})"
        raise ValueError(msg) from err
    zscores, errors, rejected, repeats, replies, adjust, leftovers, ema = parsed
    # Both restore themselves all or nothing; the ledger goes second, so a
    # refused ledger leaves the regression to be reset below.
    before = state.calibrator.export()
    part = "regression"
    try:
        state.calibrator.restore(data["calibrator"])
        part = "ledger"
        state.ledger.restore(data["ledger"])
    except (TypeError, KeyError, ValueError, OverflowError, AttributeError) as err:
        state.calibrator.restore(before)
        msg = f"a malformed snapshot {part} ({type(err).__name__}: {err})"
        raise ValueError(msg) from err
    for window, values in zip(state.zscores, zscores, strict=True):
        window.clear()
        window.extend(values)
    state.errors.clear()
    state.errors.extend(errors)
    state.rejected = rejected
    state.repeats = repeats
    state.replies = replies
    state.reply_adjust = adjust
    state.leftovers.clear()
    state.leftovers.extend(leftovers)
    state.error_ema = ema
    state.restored()


_Parsed = tuple[
    list[list[float]],
    list[tuple[float, float]],
    dict[str, int],
    int,
    set[int],
    float,
    list[float],
    float,
]


def _parse(state: CounterState, data: Mapping[str, Any]) -> _Parsed:
    """Every plain value of a snapshot, checked (the maps check their own)."""
    if data.get("v") != SNAPSHOT_VERSION:
        msg = f"a snapshot of version {data.get('v')!r:.20}, not {SNAPSHOT_VERSION}"
        raise ValueError(msg)
    if data.get("kind") != state.kind:
        msg = f"a snapshot of a {data.get('kind')!r:.20} counter, not {state.kind!r}"
        raise ValueError(msg)
    zscores = [[_ratio(z) for z in window] for window in data["zscores"]]
    if len(zscores) != len(state.zscores):
        msg = "a snapshot with the wrong number of residual windows"
        raise ValueError(msg)
    flat = [_ratio(x) for x in data["errors"]]
    if len(flat) % 2:
        msg = "a snapshot with an odd number of error values"
        raise ValueError(msg)
    errors = list(zip(flat[::2], flat[1::2], strict=True))
    rejected = {
        _reason(reason): _count(n) for reason, n in dict(data["rejected"]).items()
    }
    replies = {as_hash(d) for d in data["replies"]}
    leftovers = [_ratio(x, _MAX_COUNT) for x in data["leftovers"]]
    return (
        zscores,
        errors,
        rejected,
        _count(data["repeats"]),
        replies,
        _ratio(data["reply_adjust"], _MAX_COUNT),
        leftovers,
        _ratio(data["error_ema"]),
    )


def _ratio(value: object, bound: float = _MAX_RATIO) -> float:
    """A finite number within ``bound``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        msg = f"not a number: {value!r:.40}"
        raise TypeError(msg)
    if not (math.isfinite(value) and abs(value) <= bound):
        msg = f"a value out of range: {value!r:.40}"
        raise ValueError(msg)
    return float(value)


def _count(value: object) -> int:
    """A non-negative integer count."""
    if isinstance(value, bool) or not isinstance(value, int):
        msg = f"not a count: {value!r:.40}"
        raise TypeError(msg)
    if not 0 <= value <= _MAX_COUNT:
        msg = f"a count out of range: {value}"
        raise ValueError(msg)
    return value


def _reason(value: object) -> str:
    """A short rejection reason."""
    if not isinstance(value, str) or not 0 < len(value) <= _MAX_REASON:
        msg = f"not a rejection reason: {value!r:.40}"
        raise ValueError(msg)
    return value
