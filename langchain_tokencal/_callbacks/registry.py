"""The counter registry: one calibrated counter per model key, and name resolution.

A handler keeps one `CalibratedCounter` per model key (the configured model
name a run reports). Names a user passes to a count resolve to a key: the key
itself, an alias (the snapshot a response named, e.g. ``claude-next-latest``),
or a dated snapshot of a known key (``gpt-4o-2024-08-06`` -> ``gpt-4o``).

Thread-safe: lookups are single dictionary reads; creating or replacing a
counter and recording an alias take the lock.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from typing import TYPE_CHECKING

from langchain_tokencal._calibration import CalibratedCounter
from langchain_tokencal._callbacks.parking import PARKED_BYTES, Parking
from langchain_tokencal._callbacks.snapshots import build_counters, encode_counter
from langchain_tokencal._providers import canonical_label, snapshot_of
from langchain_tokencal.errors import ConfigError
from langchain_tokencal.events import EventError, LearnEvent, check_event

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from langchain_tokencal.config import CounterConfig
    from langchain_tokencal.storage import Snapshot

__all__ = ["CounterRegistry"]

logger = logging.getLogger(__name__)


class CounterRegistry:
    """The counters of one handler, by model key, and the aliases of the keys.

    Args:
        config: The settings every new counter gets.
        origin: The handler's identity, written on the events its counters emit.
        publish: Where new counters send their events (the store sync).
        clock: Monotonic clock for the counters' caches (``None``: theirs).

    Example:
        ```python
        from langchain_tokencal._callbacks.registry import CounterRegistry
        from langchain_tokencal.config import CounterConfig

        registry = CounterRegistry(CounterConfig(), "me", lambda events: None)
        registry.counter_for("gpt-4o", "openai")
        assert registry.resolve("gpt-4o-2024-08-06") == "gpt-4o"
        ```
    """

    __slots__ = (
        "_clock",
        "_config",
        "_limit",
        "_lock",
        "_origin",
        "_publish",
        "_tick",
        "_used",
        "aliases",
        "counters",
        "parking",
    )

    def __init__(
        self,
        config: CounterConfig,
        origin: str,
        publish: Callable[[Sequence[LearnEvent]], None],
        clock: Callable[[], float] | None = None,
        *,
        limit: int | None = None,
        parking_budget: int | None = PARKED_BYTES,
    ) -> None:
        """Create an empty registry (``limit``: live counters, else no bound)."""
        self._config = config
        self._origin = origin
        self._publish = publish
        self._clock = clock
        self._lock = threading.Lock()
        self.counters: dict[str, CalibratedCounter] = {}
        # Snapshot names responses reported -> the model key of their run.
        self.aliases: dict[str, str] = {}
        # Live counters past ``limit`` are parked, least recently used first.
        self._limit = limit
        self._tick = itertools.count()
        self._used: dict[str, int] = {}
        self.parking = Parking(parking_budget)

    def counter_for(
        self, model: str, provider: str | None = None, *, announce: bool = True
    ) -> CalibratedCounter:
        """The counter of a model key, created on first use.

        Args:
            model: The model key.
            provider: Where the model is served, when a run said so.
            announce: Publish where the model is served (not for counters
                built from the store's own events).
        """
        counter = self.counters.get(model)
        if self._limit is not None:
            self._used[model] = next(self._tick)
        if (
            counter is not None
            and provider
            and counter.provider_guessed
            and counter.provider != canonical_label(provider)
            and counter.is_fresh
        ):
            # Created by a count before any run said where the model is served
            # (e.g. "gpt-oss" on Ollama): start over with the real provider.
            with self._lock:
                if self.counters.get(model) is counter:
                    del self.counters[model]
            counter = None
        if counter is None:
            with self._lock:
                counter = self.counters.get(model)
                if counter is None:
                    counter = self._unpark(model) or self._create(
                        model, provider, announce=announce
                    )
                    if self._limit is not None and len(self.counters) > self._limit:
                        self._park_idle(self._limit, keep=model)
        return counter

    def _unpark(self, model: str) -> CalibratedCounter | None:
        """The parked counter of ``model``, restored (the caller holds the lock)."""
        document = self.parking.take(model)
        if document is None:
            return None
        built = build_counters({model: document}, self._new, "memory")
        counter = built.get(model)
        if counter is not None:
            self.counters[model] = counter
        return counter

    def _park_idle(self, limit: int, keep: str) -> None:
        """Park the least recently used idle counters until ``limit`` are live.

        Idle: nothing queued to learn, so parking never learns on the caller's
        behalf. Costs the export and compression of each parked counter (a
        few milliseconds), once per model that falls out of use.
        """
        used = self._used
        order = sorted(
            (m for m in self.counters if m != keep), key=lambda m: used.get(m, -1)
        )
        for model in order:
            if len(self.counters) <= limit:
                break
            counter = self.counters[model]
            if counter.queued:
                continue
            self.parking.park(model, encode_counter(counter))
            del self.counters[model]
            used.pop(model, None)

    def _new(self, model: str, provider: str | None) -> CalibratedCounter:
        """A fresh counter, publishing as this registry's counters do."""
        counter = CalibratedCounter(
            model, provider, config=self._config, clock=self._clock
        )
        counter.origin = self._origin
        counter.listener = self._publish
        return counter

    def _create(
        self, model: str, provider: str | None, *, announce: bool
    ) -> CalibratedCounter:
        """Build and register a counter (the caller holds the lock)."""
        counter = self.counters[model] = self._new(model, provider)
        if announce:
            # Others learn where this model is served; a counter built from the
            # store's events needs no new record.
            meta = (counter.provider or "",)
            self._publish([LearnEvent(model, "meta", meta, self._origin, time.time())])
        return counter

    def resolve(self, model: str | None) -> str:
        """The model key a user-given name stands for.

        Raises:
            ConfigError: When ``model`` is omitted and the handler has seen
                other than exactly one model.
        """
        # Snapshot the keys: callbacks on other threads may add counters.
        models = tuple(self.counters)
        if model is None:
            if len(models) == 1:
                return models[0]
            known = ", ".join(sorted(models)) or "none yet"
            msg = f"Pass model=...; this handler has seen: {known}."
            raise ConfigError(msg)
        if model in self.counters:
            return model
        alias = self.aliases.get(model)
        if alias is not None:
            return alias
        # A dated snapshot of a known model: "gpt-4o-2024-08-06" -> "gpt-4o".
        return snapshot_of(model, models) or model

    def alias(self, snapshot: str, model: str) -> None:
        """Record that responses naming ``snapshot`` came from ``model``."""
        with self._lock:
            self.aliases[snapshot] = model

    def replay(self, events: Sequence[LearnEvent]) -> int:
        """Apply events from another process or a file to the counters.

        Each event is range-checked first (`check_event`): one no counter
        could have learned (a negative token count, an absurd error, a model
        name that is not text) is skipped, and the skipped ones are counted in
        one warning per batch.

        Returns:
            How many events were skipped.
        """
        by_model: dict[str, list[LearnEvent]] = {}
        providers: dict[str, str | None] = {}
        skipped = 0
        reason = ""
        for event in events:
            try:
                check_event(event)
            except EventError as err:
                skipped += 1
                reason = reason or str(err)
                continue
            if event.kind == "meta":
                providers[event.model] = str(event.values[0]) if event.values else None
            by_model.setdefault(event.model, []).append(event)
        if skipped:
            logger.warning(
                "tokencal: skipped %d replayed event(s) out of range (first: %s)",
                skipped,
                reason,
            )
        for model, batch in by_model.items():
            counter = self.counters.get(model) or self.counter_for(
                model, providers.get(model) or None, announce=False
            )
            counter.replay(batch)
        return skipped

    def restore(self, snapshot: Snapshot, where: str) -> None:
        """Start the snapshot's models over from it (see `build_counters`).

        A model's counter is replaced whole: what it learned is in the
        snapshot or in the events after it, which are replayed next.
        """
        states = snapshot.states
        live = states
        if self._limit is not None and len(states) > self._limit:
            # Past the limit, the documents are parked as they are: they are
            # what parking keeps, and are checked when a model is used.
            live = dict(itertools.islice(states.items(), self._limit))
        built = build_counters(live, self._new, where)
        with self._lock:
            self.counters.update(built)
            for model, document in states.items():
                self.parking.take(model)  # superseded by the snapshot
                if model not in live:
                    self.counters.pop(model, None)
                    self.parking.park(model, document)

    def flush(self) -> None:
        """Learn from every observation the counters have queued."""
        for counter in list(self.counters.values()):
            counter.flush()
