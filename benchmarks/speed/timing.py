"""Interleaved timing, robust statistics and result tables.

Every contender of a measurement runs once per repetition, in an order that
rotates from one repetition to the next, so slow phases of the machine hit all
of them; the figures are medians over repetitions, with the interquartile
range. A sample that would be shorter than ``min_sample_ns`` repeats the
operation and reports the time per operation. Garbage is collected between
samples, and what was alive before the repetitions (histories, fixtures) is
frozen out of the collector meanwhile, so a full collection of the fixtures
never lands inside a sample; each contender still pays for its own garbage.
"""

import gc
import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

_clock: Callable[[], int] = time.perf_counter_ns
CLOCK = "perf_counter_ns"


def now() -> int:
    """The benchmark clock in ns: wall time (``perf_counter_ns``) by default."""
    return _clock()


def use_cpu_clock() -> None:
    """Time with the process's CPU time: immune to being descheduled.

    On a loaded machine wall time counts the slices other processes run in;
    ``process_time_ns`` counts only this process's work (all its threads).
    """
    global _clock, CLOCK  # noqa: PLW0603 - one switch, set once before measuring
    _clock = time.process_time_ns
    CLOCK = "process_time_ns"


# One sample: returns nanoseconds per operation (it may time only part of what
# it runs, e.g. leave a fresh handler's construction out).
Sample = Callable[[], float]


@dataclass(frozen=True, slots=True)
class Contender:
    name: str
    sample: Sample


@dataclass(frozen=True, slots=True)
class Stat:
    median: float
    q1: float
    q3: float
    samples: tuple[float, ...]

    @property
    def iqr(self) -> float:
        return self.q3 - self.q1

    def to_json(self) -> dict[str, Any]:
        return {
            "median_ns": round(self.median, 1),
            "iqr_ns": round(self.iqr, 1),
            "q1_ns": round(self.q1, 1),
            "q3_ns": round(self.q3, 1),
            "n": len(self.samples),
        }


def stat(values: Sequence[float]) -> Stat:
    ordered = sorted(values)
    if len(ordered) == 1:
        v = ordered[0]
        return Stat(v, v, v, tuple(ordered))
    q1, q2, q3 = statistics.quantiles(ordered, n=4, method="inclusive")
    return Stat(q2, q1, q3, tuple(ordered))


def repeat(op: Callable[[], object], inner: int) -> Sample:
    """A sample running ``op`` ``inner`` times; ns per call."""

    def sample() -> float:
        t0 = now()
        for _ in range(inner):
            op()
        return (now() - t0) / inner

    return sample


def calibrate(op: Callable[[], object], min_sample_ns: float) -> int:
    """How many calls of ``op`` make a sample of at least ``min_sample_ns``."""
    t0 = now()
    op()
    once = max(now() - t0, 1)
    return max(1, math.ceil(min_sample_ns / once))


def interleaved(
    contenders: Sequence[Contender], reps: int, warmup: int = 1
) -> dict[str, list[float]]:
    """Run every contender ``reps`` times, rotating the order.

    Returns:
        Per contender, its samples in repetition order (so pairs can be formed).
    """
    for _ in range(warmup):
        for c in contenders:
            c.sample()
    times: dict[str, list[float]] = {c.name: [] for c in contenders}
    n = len(contenders)
    # Everything alive now (histories, fixtures, corpus) is set aside from
    # the collector: collecting between samples stays cheap, and a full
    # collection of the fixtures cannot land inside one sample by chance.
    gc.collect()
    gc.freeze()
    try:
        for rep in range(reps):
            k = rep % n
            for c in (*contenders[k:], *contenders[:k]):
                # Collect between samples, not inside them: each contender
                # starts from a clean heap and pays for its own garbage only.
                gc.collect()
                times[c.name].append(c.sample())
    finally:
        gc.unfreeze()
    return times


def stats(raw: dict[str, list[float]]) -> dict[str, Stat]:
    return {name: stat(v) for name, v in raw.items()}


def fmt_ns(ns: float) -> str:
    """A duration with a unit that keeps three significant digits."""
    a = abs(ns)
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("us", 1e3)):
        if a >= scale:
            return f"{ns / scale:.3g} {unit}"
    return f"{ns:.3g} ns"


@dataclass(slots=True)
class Row:
    contender: str
    stat: Stat | None = None
    ratio: str = ""
    target: str = ""
    ok: bool | None = None


@dataclass(slots=True)
class Table:
    title: str
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(
        self,
        contender: str,
        st: Stat | None = None,
        ratio: str = "",
        target: str = "",
        *,
        ok: bool | None = None,
    ) -> None:
        self.rows.append(Row(contender, st, ratio, target, ok))

    def render(self) -> str:
        head = ("contender", "median", "IQR", "ratio", "target", "result")
        body = [
            (
                r.contender,
                fmt_ns(r.stat.median) if r.stat else "",
                fmt_ns(r.stat.iqr) if r.stat else "",
                r.ratio,
                r.target,
                "" if r.ok is None else ("pass" if r.ok else "FAIL"),
            )
            for r in self.rows
        ]
        widths = [max(len(x[i]) for x in (head, *body)) for i in range(len(head))]
        line = "  ".join

        def fmt(cells: Sequence[str]) -> str:
            first = cells[0].ljust(widths[0])
            rest = [c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]
            return line([first, *rest]).rstrip()

        out = [f"== {self.title} ==", fmt(head), fmt(["-" * w for w in widths])]
        out += [fmt(b) for b in body]
        out += [f"  note: {n}" for n in self.notes]
        return "\n".join(out)

    def to_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "rows": [
                {
                    "contender": r.contender,
                    **(r.stat.to_json() if r.stat else {}),
                    "ratio": r.ratio,
                    "target": r.target,
                    "pass": r.ok,
                }
                for r in self.rows
            ],
            "notes": self.notes,
        }
