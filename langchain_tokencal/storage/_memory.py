"""The in-memory store: the library's default, private to one process.

Besides being the store of a handler with no shared store, a `MemoryStore`
with ``max_events`` is the bounded journal behind a handler's ``save``.
"""

from __future__ import annotations

import bisect
import threading
from collections import deque
from typing import TYPE_CHECKING

from langchain_tokencal.errors import ConfigError
from langchain_tokencal.storage._base import (
    StoreBase,
    UsageDelta,
    check_keep,
    check_totals,
    closed_error,
    cursor_error,
    fresh_items,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from langchain_tokencal.events import LearnEvent

__all__ = ["MemoryStore"]


class MemoryStore(StoreBase):
    """A store in this process's memory: the library's default.

    Events live in one list ordered by a sequence number (the cursor); a
    model's oldest events are dropped by `compact`, or as soon as it has more
    than ``max_events`` when that is set. Dropped slots are swept out in bulk,
    so an append costs O(1) amortized. Thread-safe.

    Args:
        max_events: Keep at most this many newest events per model.
        max_total: Keep at most this many newest events in all (the oldest
            of any model go first).

    Example:
        ```python
        from langchain_tokencal.events import LearnEvent
        from langchain_tokencal.storage import MemoryStore

        store = MemoryStore(max_events=2)
        store.append([LearnEvent("m", "residual", (i,), "me", 0.0) for i in range(3)])
        events, _ = store.read()
        assert [e.values for e in events] == [(1,), (2,)]
        ```
    """

    def __init__(
        self, *, max_events: int | None = None, max_total: int | None = None
    ) -> None:
        """Create an empty store."""
        for name, value in (("max_events", max_events), ("max_total", max_total)):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 1
            ):
                msg = f"{name} must be a positive integer or None, got {value!r}."
                raise ConfigError(msg)
        self.max_total = max_total
        self._live = 0
        self._head = 0  # no live event before this slot
        self.url = "memory://"
        self.max_events = max_events
        self._lock = threading.Lock()
        self._closed = False
        # Parallel lists: sequence numbers (sorted) and events, None once dropped.
        self._seqs: list[int] = []
        self._events: list[LearnEvent | None] = []
        self._dropped = 0
        self._next = 1
        self._by_model: dict[str, deque[int]] = {}
        self._usage: dict[str, list[int]] = {}
        # Each origin's highest applied seq (see `StoreBase.apply_batch`).
        self._marks: dict[str, int] = {}

    def apply_batch(
        self, events: Sequence[LearnEvent], usage: Sequence[UsageDelta] = ()
    ) -> None:
        """Add events and usage, each identity once (see `StoreBase.apply_batch`)."""
        totals = [check_totals(delta.totals) for delta in usage]
        with self._lock:
            self._check_open("append events to")
            keep, marks = fresh_items(
                [*events, *usage], lambda o: self._marks.get(o, 0)
            )
            self._marks.update(marks)
            self._add([e for e, fresh in zip(events, keep, strict=False) if fresh])
            for delta, values, fresh in zip(
                usage, totals, keep[len(events) :], strict=True
            ):
                if fresh:
                    self._add_usage(delta.model, values)

    def _add(self, events: Sequence[LearnEvent]) -> None:
        """Append events (the caller holds the lock)."""
        limit = self.max_events
        for event in events:
            seq = self._next
            self._next += 1
            self._seqs.append(seq)
            self._events.append(event)
            seqs = self._by_model.get(event.model)
            if seqs is None:
                seqs = self._by_model[event.model] = deque()
            seqs.append(seq)
            self._live += 1
            if limit is not None and len(seqs) > limit:
                self._drop(seqs.popleft())
        total = self.max_total
        if total is not None:
            while self._live > total:
                self._drop_oldest()
        self._sweep_if_sparse()

    def _drop_oldest(self) -> None:
        """Drop the oldest live event of any model (the caller holds the lock)."""
        events, i = self._events, self._head
        while events[i] is None:
            i += 1
        event = events[i]
        assert event is not None  # noqa: S101 - the loop stops on a live slot
        seqs = self._by_model[event.model]
        seqs.popleft()  # the model's oldest is the log's oldest of that model
        if not seqs:
            del self._by_model[event.model]
        events[i] = None
        self._head = i + 1
        self._dropped += 1
        self._live -= 1

    def read(self, after: str = "") -> tuple[list[LearnEvent], str]:
        """Return the events after ``after`` (see `Store.read`)."""
        start = _memory_cursor(after)
        with self._lock:
            self._check_open("read")
            first = bisect.bisect_right(self._seqs, start)
            found = [
                (seq, event)
                for seq, event in zip(
                    self._seqs[first:], self._events[first:], strict=True
                )
                if event is not None
            ]
        if not found:
            return [], after
        return [event for _, event in found], str(found[-1][0])

    def add_usage(self, model: str, totals: Sequence[int]) -> None:
        """Add usage sums (see `Store.add_usage`)."""
        values = check_totals(totals)
        with self._lock:
            self._check_open("add usage to")
            self._add_usage(model, values)

    def _add_usage(self, model: str, values: list[int]) -> None:
        sums = self._usage.get(model)
        if sums is None:
            self._usage[model] = values
        else:
            for i, value in enumerate(values):
                sums[i] += value

    def usage(self) -> dict[str, list[int]]:
        """Return a copy of every model's usage totals (see `Store.usage`)."""
        with self._lock:
            self._check_open("read usage from")
            return {model: list(sums) for model, sums in sorted(self._usage.items())}

    def compact(self, keep: int) -> int:
        """Drop all but each model's ``keep`` newest events (see `Store.compact`)."""
        keep = check_keep(keep)
        with self._lock:
            self._check_open("compact")
            deleted = 0
            for model, seqs in list(self._by_model.items()):
                while len(seqs) > keep:
                    self._drop(seqs.popleft())
                    deleted += 1
                if not seqs:
                    del self._by_model[model]
            if deleted:
                self._sweep()
            return deleted

    def applied(self, origin: str) -> int:
        """The origin's highest applied sequence number (see `StoreBase.applied`)."""
        with self._lock:
            self._check_open("read the origins of")
            return self._marks.get(origin, 0)

    def close(self) -> None:
        """Mark the store closed; later calls raise `StoreError`."""
        with self._lock:
            self._closed = True

    def _check_open(self, what: str) -> None:
        if self._closed:
            raise closed_error(what, self.url)

    def _drop(self, seq: int) -> None:
        self._events[bisect.bisect_left(self._seqs, seq)] = None
        self._dropped += 1
        self._live -= 1

    def _sweep_if_sparse(self) -> None:
        # Sweeping when half the slots are dead keeps appends O(1) amortized.
        if self._dropped > 64 and self._dropped * 2 > len(self._seqs):  # noqa: PLR2004 - small logs are not worth a sweep
            self._sweep()

    def _sweep(self) -> None:
        live = [
            (s, e)
            for s, e in zip(self._seqs, self._events, strict=True)
            if e is not None
        ]
        self._seqs = [s for s, _ in live]
        self._events = [e for _, e in live]
        self._dropped = 0
        self._head = 0


def _memory_cursor(after: str) -> int:
    if not after:
        return 0
    if after.isdigit():
        return int(after)
    raise cursor_error(after, "memory://")
