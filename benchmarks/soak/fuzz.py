"""Fuzzing at volume: a million mutated payloads, event lines, events and snapshots.

The hypothesis tests in CI run a few thousand examples each; this runs a
million inputs, mutated from real ones (the recorded provider payloads in
``tests/unit_tests/data/usage``, the events and the snapshot a handler
writes), through every decoder a store, a file or a provider reaches:

- ``payloads``: `parse_usage` on a mutated provider payload never raises and
  returns ``None`` or a usage within its bounds;
- ``lines``: `decode_event` on a mutated event line raises only `EventError`;
- ``events``: `check_event` raises only `EventError`, and an event it
  passes replays into a handler whose next estimate is finite and >= 0;
- ``snapshots``: a counter's `restore` of a mutated snapshot raises only
  `ValueError`, leaving the counter as it was, or restores one whose
  estimate is finite and >= 0.

Anything else is an unexpected exception, counted with its first example.
"""

import json
import logging
import math
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

from langchain_tokencal import TokenCalibrationHandler, create_counter, parse_usage
from langchain_tokencal.errors import EventError
from langchain_tokencal.events import (
    LearnEvent,
    check_event,
    decode_event,
    encode_event,
)

DATA = Path(__file__).resolve().parents[2] / "tests" / "unit_tests" / "data" / "usage"
MODEL = "fuzz-model"
_ODD: tuple[Any, ...] = (
    None,
    True,
    -1,
    0,
    2**70,
    -(2**63) - 1,
    10**9 + 1,
    1e300,
    -1e300,
    float("nan"),
    float("inf"),
    "",
    "12",
    "\ud800",
    "x" * 600,
    [],
    {},
    [[[[[]]]]],
    {"input_tokens": -5},
)


@dataclass(frozen=True, slots=True)
class FuzzRun:
    """How many inputs of one kind ran, and what went wrong."""

    kind: str
    inputs: int
    accepted: int
    unexpected: int
    first_unexpected: str
    seconds: float


def _payloads() -> list[Any]:
    cases: list[Any] = []
    for path in sorted(DATA.glob("*.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        cases += [case["payload"] for case in doc.get("cases", ()) if "payload" in case]
    return cases


def _seed() -> tuple[list[LearnEvent], dict[str, Any]]:
    """Events and the snapshot of a counter that learned a short conversation."""
    counter = create_counter(MODEL, "anthropic")
    events: list[LearnEvent] = []
    counter.listener = events.extend
    history: list[Any] = [SystemMessage("You are brief.")]
    for i in range(40):
        history = [*history, HumanMessage(f"question {i} " + "word " * (i % 9))]
        counter.observe(history, 20 + 9 * len(history) + i % 4)
        history = [*history, AIMessage("answer " * (1 + i % 3))]
    counter.flush()
    return events, counter.export()


def _mutate(value: Any, rng: random.Random, depth: int = 0) -> Any:  # noqa: PLR0911 - one return per kind of value
    """One random change somewhere in a JSON-like value."""
    if depth > 6 or rng.random() < 0.25:
        return rng.choice(_ODD)
    if isinstance(value, dict) and value:
        out = dict(value)
        key = rng.choice(list(out))
        roll = rng.random()
        if roll < 0.15:
            del out[key]
        elif roll < 0.25:
            out[f"{key}_x"] = rng.choice(_ODD)
        else:
            out[key] = _mutate(out[key], rng, depth + 1)
        return out
    if isinstance(value, list) and value:
        out_list = list(value)
        i = rng.randrange(len(out_list))
        roll = rng.random()
        if roll < 0.15:
            del out_list[i]
        elif roll < 0.25:
            out_list.insert(i, rng.choice(_ODD))
        else:
            out_list[i] = _mutate(out_list[i], rng, depth + 1)
        return out_list
    if isinstance(value, bool) or value is None:
        return rng.choice(_ODD)
    if isinstance(value, int):
        return rng.choice((value + 1, -value, value * 10**6, value - 2**64, 0))
    if isinstance(value, float):
        return rng.choice((value * -1.0, value * 1e12, float("nan"), 0.0))
    if isinstance(value, str):
        return rng.choice((value[: len(value) // 2], value + "\x00", "", value * 3))
    return rng.choice(_ODD)


def _mutate_text(line: str, rng: random.Random) -> str | bytes:
    """A damaged line: cut, a flipped character, a nesting bomb or bad bytes."""
    roll = rng.random()
    if roll < 0.2:
        return line[: rng.randrange(len(line) + 1)]
    if roll < 0.4:
        i = rng.randrange(len(line))
        return line[:i] + chr(rng.randrange(0x20, 0x7F)) + line[i + 1 :]
    if roll < 0.45:
        n = rng.choice((3, 50, 5000))
        return "[" * n + line + "]" * n
    if roll < 0.5:
        return line.encode() + bytes([0xFF, 0xFE])
    try:
        return json.dumps(_mutate(json.loads(line), rng), allow_nan=True)
    except (ValueError, RecursionError):
        return line


def _timed(kind: str, n: int, step: Callable[[int], bool]) -> FuzzRun:
    """Run ``step`` n times; it returns whether the input was accepted."""
    accepted = unexpected = 0
    first = ""
    t0 = time.perf_counter()
    for i in range(n):
        try:
            accepted += step(i)
        except Exception as err:  # noqa: BLE001, PERF203 - counting them is the point
            unexpected += 1
            first = first or f"{type(err).__name__}: {str(err)[:160]}"
    return FuzzRun(
        kind, n, accepted, unexpected, first, round(time.perf_counter() - t0, 1)
    )


class Poisoned(Exception):  # noqa: N818 - what the run looks for
    """An input was accepted and left a count negative or an interval infinite."""


def _require(ok: bool, what: object) -> None:  # noqa: FBT001 - a check
    if not ok:
        raise Poisoned(repr(what)[:160])


def _finite(handler: TokenCalibrationHandler) -> bool:
    est = handler.estimate([HumanMessage("question 1 word")], model=MODEL)
    return est.tokens >= 0 and math.isfinite(est.high) and est.low >= 0


def run(total: int, seed: int = 0) -> list[FuzzRun]:
    """``total`` inputs, a quarter of each kind."""
    # Replay logs each malformed event it skips; a million would drown the table.
    logging.getLogger("langchain_tokencal").setLevel(logging.ERROR)
    rng = random.Random(seed)
    quarter = max(1, total // 4)
    payloads = _payloads()
    events, snapshot = _seed()
    lines = [encode_event(e) for e in events]

    def payload(_: int) -> bool:
        usage = parse_usage(_mutate(rng.choice(payloads), rng))
        if usage is None:
            return False
        _require(0 <= usage.input_tokens <= usage.total_tokens <= 10**9, usage)
        return True

    def line(_: int) -> bool:
        try:
            decode_event(_mutate_text(rng.choice(lines), rng))
        except EventError:
            return False
        return True

    handlers: list[TokenCalibrationHandler] = [TokenCalibrationHandler()]

    def event(i: int) -> bool:
        base = rng.choice(events)
        values = _mutate(list(base.values), rng)
        fields = {"values": tuple(values) if isinstance(values, list) else values}
        if rng.random() < 0.1:
            fields["model"] = rng.choice((MODEL, "", " x", "\ud800", 5))
        if rng.random() < 0.05:
            fields["kind"] = rng.choice(("fit", "nope", "", 3))
        candidate = replace(base, **fields)
        try:
            check_event(candidate)
        except EventError:
            return False
        if i % 5000 == 0:
            handlers[0] = TokenCalibrationHandler()  # a fresh one now and then
        handlers[0]._sync.ingest([candidate], publish=False)  # noqa: SLF001
        if candidate.model == MODEL:
            _require(_finite(handlers[0]), candidate)
        return True

    def snap(_: int) -> bool:
        counter = create_counter(MODEL, "anthropic")
        try:
            counter.restore(_mutate(json.loads(json.dumps(snapshot)), rng))
        except ValueError:
            return False
        est = counter.estimate([HumanMessage("question 1 word")])
        _require(est.tokens >= 0 and math.isfinite(est.high), est)
        return True

    return [
        _timed("payloads", quarter, payload),
        _timed("lines", quarter, line),
        _timed("events", quarter, event),
        _timed("snapshots", quarter, snap),
    ]


def examples(runs: list[FuzzRun]) -> Iterator[str]:
    """One line per kind, for the table."""
    for r in runs:
        yield (
            f"{r.kind:<10} {r.inputs:>9,} {r.accepted:>9,} {r.unexpected:>10} "
            f"{r.seconds:>7.1f}  {r.first_unexpected}"
        )
