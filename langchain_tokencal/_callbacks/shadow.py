"""The log replayed in store order, apart from the live counters: snapshots' source.

A live handler's counters also hold what it learned but did not push yet,
in an order no other process saw, so a snapshot is not taken from them. A
`Shadow` has a registry of its own that is fed every event of the log, its
own included, in store order, through the same `CounterRegistry.replay` the
live counters use; its counters are then exactly what a new process would
build by replaying the log up to the shadow's cursor.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from langchain_tokencal._callbacks.parking import Parking
from langchain_tokencal._callbacks.registry import CounterRegistry
from langchain_tokencal._callbacks.snapshots import encode_counter
from langchain_tokencal.storage import Snapshot

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from langchain_tokencal.config import CounterConfig
    from langchain_tokencal.events import LearnEvent

__all__ = ["Shadow"]


class Shadow:
    """Counters fed the whole log in store order: what a snapshot holds.

    Args:
        config: The handler's counter settings.
        clock: The handler's monotonic clock (``None``: the counters' own).

    Example:
        ```python
        from langchain_tokencal._callbacks.shadow import Shadow
        from langchain_tokencal.config import CounterConfig
        from langchain_tokencal.events import LearnEvent

        shadow = Shadow(CounterConfig(), None)
        shadow.advance([LearnEvent("gpt-4o", "meta", ("openai",), "a", 0.0)], "7")
        assert shadow.snapshot().cursor == "7"
        ```
    """

    def __init__(
        self, config: CounterConfig, clock: Callable[[], float] | None
    ) -> None:
        """Start with no snapshot and nothing replayed."""
        # Bounded like a handler's live counters, but a parked state is never
        # dropped: the snapshot holds every model.
        self._registry = CounterRegistry(
            config,
            "",
            _discard,
            clock,
            limit=config.max_models,
            parking_budget=None,
        )
        # The snapshot the counters started from, and the last event fed.
        self.base = ""
        self.cursor = ""

    def load(self, snapshot: Snapshot | None, where: str) -> None:
        """Start over from ``snapshot`` (``None``: from nothing)."""
        registry = self._registry
        registry.counters.clear()
        registry.parking = Parking(None)
        if snapshot is not None:
            registry.restore(snapshot, where)
        self.base = self.cursor = snapshot.cursor if snapshot is not None else ""

    def advance(self, events: Sequence[LearnEvent], cursor: str) -> None:
        """Replay the log's next events, in order, and move the cursor."""
        if events:
            self._registry.replay(events)
        self.cursor = cursor or self.cursor

    def snapshot(self) -> Snapshot:
        """The counters' state as a snapshot at the cursor."""
        registry = self._registry
        states = dict(registry.parking.documents())
        states.update(
            (m, encode_counter(c)) for m, c in list(registry.counters.items())
        )
        return Snapshot(self.cursor, states)


def _discard(events: Sequence[LearnEvent]) -> None:
    """A shadow's counters learn nothing of their own: nothing to publish."""
