"""The runs a handler has seen start and not yet end.

One entry per model call in flight, written in ``on_chat_model_start`` and
taken in ``on_llm_end``: the two dictionary operations of every call, so they
skip what a general cache pays for (a lock, LRU order, hit statistics). A run
that never ends (cancelled, crashed) leaves by age or by size.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from langchain_tokencal._cache import check_bounds

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from uuid import UUID

    from langchain_core.messages import BaseMessage

__all__ = ["Pending", "PendingRuns"]


class Pending:
    """A started run's prompt, waiting for its usage (one per run, short-lived).

    Example:
        ```python
        from langchain_core.messages import HumanMessage
        from langchain_tokencal._callbacks.runs import Pending

        pending = Pending("gpt-4o", "openai", [HumanMessage("hi")], None)
        assert pending.streamed is None  # until a streamed chunk reports usage
        ```
    """

    # A plain slotted class: built once per model call, where a frozen
    # dataclass's ``object.__setattr__`` per field costs more than the rest.
    __slots__ = ("last_chunk", "messages", "model", "provider", "streamed", "tools")

    def __init__(
        self,
        model: str,
        provider: str | None,
        messages: Sequence[BaseMessage],
        tools: Sequence[Any] | None,
    ) -> None:
        self.model = model
        self.provider = provider
        self.messages = messages
        self.tools = tools
        # Input tokens reported by each streamed chunk that carries usage (0
        # when it names none), to detect summed or output-only usage; created
        # by the first such chunk.
        self.streamed: list[int] | None = None
        # The last chunk's own usage that reported input: the call's when
        # chunks are cumulative.
        self.last_chunk: dict[str, Any] | None = None


class PendingRuns:
    """Started runs by id, bounded by ``max_size`` and by ``ttl`` seconds.

    Thread-safe: a put, pop or peek is one dictionary operation (atomic in
    CPython); only eviction beyond ``max_size`` takes a lock.

    Raises:
        ConfigError: On a ``max_size`` below 1 or a ``ttl`` that is not a
            positive number of seconds (see `check_bounds`).

    Example:
        ```python
        from uuid import uuid4

        from langchain_tokencal._callbacks.runs import Pending, PendingRuns

        now = [0.0]
        runs = PendingRuns(max_size=10, ttl=60.0, clock=lambda: now[0])
        run_id = uuid4()
        runs.put(run_id, Pending("gpt-4o", "openai", [], None))
        assert runs.peek(run_id) is not None and len(runs) == 1
        now[0] = 61.0
        assert runs.pop(run_id) is None  # expired
        ```
    """

    __slots__ = ("_clock", "_data", "_lock", "_max_size", "_ttl", "lost")

    def __init__(
        self,
        max_size: int,
        ttl: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Create an empty map (see the class docstring)."""
        check_bounds(max_size, ttl)
        self._max_size = max_size
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        # Insertion order is start order: the first key is the oldest run.
        self._data: dict[UUID, tuple[Pending, float]] = {}
        # Runs dropped by age or size, by model, until `take_lost`.
        self.lost: dict[str, int] = {}

    def put(self, run_id: UUID, pending: Pending) -> None:
        """Record a started run, dropping the oldest beyond ``max_size``."""
        data = self._data
        data[run_id] = (pending, self._clock())
        if len(data) > self._max_size:
            self._evict()

    def pop(self, run_id: UUID) -> Pending | None:
        """Take a run's record: ``None`` if unknown or older than ``ttl``."""
        entry = self._data.pop(run_id, None)
        if entry is None or self._expired(entry):
            # An expired run that ends now did end: it is not counted lost.
            return None
        return entry[0]

    def peek(self, run_id: UUID) -> Pending | None:
        """A run's record without taking it (``None`` if unknown or expired)."""
        entry = self._data.get(run_id)
        if entry is None or self._expired(entry):
            return None
        return entry[0]

    def purge_expired(self) -> int:
        """Drop every run older than ``ttl`` now; return how many."""
        if self._ttl is None:
            return 0
        with self._lock:
            old = [k for k, entry in list(self._data.items()) if self._expired(entry)]
            gone = [e for e in (self._data.pop(k, None) for k in old) if e is not None]
        self._lose(gone)
        return len(old)

    def take_lost(self) -> dict[str, int]:
        """The runs dropped since the last call, by model, and forget them."""
        with self._lock:
            lost, self.lost = self.lost, {}
        return lost

    def _lose(self, entries: Sequence[tuple[Pending, float]]) -> None:
        """Count runs that will never end, by model (rare: takes the lock)."""
        if not entries:
            return
        with self._lock:
            lost = self.lost
            for pending, _ in entries:
                lost[pending.model] = lost.get(pending.model, 0) + 1

    def __len__(self) -> int:
        """Runs recorded (expired ones included until purged or taken)."""
        return len(self._data)

    def _expired(self, entry: tuple[Any, float]) -> bool:
        return self._ttl is not None and self._clock() - entry[1] >= self._ttl

    def _evict(self) -> None:
        with self._lock:
            data = self._data
            while len(data) > self._max_size:
                try:
                    oldest = next(iter(data))
                except (StopIteration, RuntimeError):  # changed meanwhile: retry
                    continue
                entry = data.pop(oldest, None)
                if entry is not None:
                    model = entry[0].model
                    self.lost[model] = self.lost.get(model, 0) + 1
