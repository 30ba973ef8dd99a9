"""A thread-safe LRU map bounded by size and, optionally, by entry age.

`TTLCache` is an exact LRU map with an optional TTL, for state that must not
grow without bound, such as the calibration ledger. One lock guards each
cache; critical sections hold no I/O and no calls into user code, only
dictionary operations. `CacheStats` is the snapshot both bounded maps report
(`TTLCache` and `RecordMemo`), and `check_bounds` the check of their bounds.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

from langchain_tokencal.errors import ConfigError

__all__ = ["CacheStats", "TTLCache", "check_bounds"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

_MISSING: Any = object()


@dataclass(frozen=True, slots=True)
class CacheStats:
    """A snapshot of a cache's size and counters.

    Attributes:
        size: Live entries.
        max_size: Most entries the cache holds.
        ttl: Seconds an entry stays valid, or ``None`` for no expiry.
        hits: `TTLCache.get` calls that found a live entry.
        misses: `TTLCache.get` calls that found none (expired ones included).
        evictions: Live entries dropped to make room.
        expirations: Entries dropped because they outlived the TTL.
        average_age: Mean age in seconds of the live entries; 0.0 when the
            cache is empty or has no TTL (untimed entries carry no timestamp,
            which keeps them small).

    Example:
        ```python
        from langchain_tokencal._cache import TTLCache

        cache: TTLCache[str, int] = TTLCache(max_size=2)
        cache.put("a", 1)
        cache.get("a")
        cache.get("b")
        assert cache.stats().hit_rate == 0.5
        ```
    """

    size: int
    max_size: int
    ttl: float | None
    hits: int
    misses: int
    evictions: int
    expirations: int
    average_age: float

    @property
    def hit_rate(self) -> float:
        """Hits per lookup; 0.0 before the first lookup."""
        lookups = self.hits + self.misses
        return self.hits / lookups if lookups else 0.0


def check_bounds(max_size: int, ttl: float | None) -> None:
    """Refuse a size or TTL no bounded map can use.

    Raises:
        ConfigError: If ``max_size`` is not an integer >= 1, or ``ttl`` is
            neither ``None`` nor a positive number of seconds.

    Example:
        ```python
        from langchain_tokencal._cache import check_bounds

        check_bounds(100, 60.0)  # fine; check_bounds(0, None) raises ConfigError
        ```
    """
    if isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < 1:
        msg = f"max_size must be an integer >= 1, got {max_size!r}."
        raise ConfigError(msg)
    if ttl is not None and not (ttl > 0 and not math.isnan(ttl)):
        msg = f"ttl must be a positive number of seconds or None, got {ttl!r}."
        raise ConfigError(msg)


class TTLCache(Generic[K, V]):
    """A thread-safe LRU map bounded by size and, optionally, by entry age.

    `get` counts a hit or a miss and marks the entry as recently used; an
    entry older than ``ttl`` is never returned: `get` drops it and counts an
    expiration and a miss. `put` evicts the least recently used entries beyond
    ``max_size``. `peek` neither counts nor reorders.

    Args:
        max_size: Most entries held; at least 1.
        ttl: Seconds an entry stays valid after its last `put`, or ``None``
            for no expiry.
        clock: Monotonic time source in seconds (inject a fake one in tests).

    Raises:
        ConfigError: If ``max_size < 1`` or ``ttl <= 0``.

    Example:
        ```python
        from langchain_tokencal._cache import TTLCache

        now = [0.0]
        cache: TTLCache[str, int] = TTLCache(max_size=100, ttl=60, clock=lambda: now[0])
        cache.put("run-1", 42)
        assert cache.get("run-1") == 42
        now[0] = 61.0
        assert cache.get("run-1") is None
        assert cache.stats().expirations == 1
        ```
    """

    __slots__ = (
        "_clock",
        "_data",
        "_evictions",
        "_expirations",
        "_hits",
        "_lock",
        "_max_size",
        "_misses",
        "_ttl",
    )

    def __init__(
        self,
        max_size: int,
        ttl: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Create an empty cache (see the class docstring for the arguments)."""
        check_bounds(max_size, ttl)
        self._max_size = max_size
        self._ttl = None if ttl is None else float(ttl)
        self._clock = clock
        self._lock = threading.Lock()
        # Untimed caches store values as they are; timed ones store
        # (value, inserted_at). One map keeps the LRU order either way.
        self._data: OrderedDict[K, Any] = OrderedDict()
        self._hits = 0
        self._misses = 0
        self._evictions = 0
        self._expirations = 0

    def get(self, key: K, default: V | None = None) -> V | None:
        """Return the live value for ``key`` (a hit) or ``default`` (a miss)."""
        ttl = self._ttl
        if ttl is None:
            with self._lock:
                value = self._data.get(key, _MISSING)
                if value is _MISSING:
                    self._misses += 1
                    return default
                self._data.move_to_end(key)
                self._hits += 1
                return cast("V", value)
        now = self._clock()
        with self._lock:
            entry = self._data.get(key, _MISSING)
            if entry is _MISSING:
                self._misses += 1
                return default
            if now - entry[1] >= ttl:
                del self._data[key]
                self._expirations += 1
                self._misses += 1
                return default
            self._data.move_to_end(key)
            self._hits += 1
            return cast("V", entry[0])

    def peek(self, key: K) -> V | None:
        """Return the live value for ``key`` or ``None``, without stats or LRU touch."""
        with self._lock:
            entry = self._data.get(key, _MISSING)
        if entry is _MISSING:
            return None
        if self._ttl is None:
            return cast("V", entry)
        if self._clock() - entry[1] >= self._ttl:
            return None
        return cast("V", entry[0])

    def put(self, key: K, value: V) -> None:
        """Store ``value`` as the most recently used entry, evicting beyond max_size."""
        ttl = self._ttl
        now = 0.0 if ttl is None else self._clock()
        entry: Any = value if ttl is None else (value, now)
        with self._lock:
            data = self._data
            data[key] = entry
            data.move_to_end(key)
            while len(data) > self._max_size:
                _, old = data.popitem(last=False)
                if ttl is not None and now - old[1] >= ttl:
                    self._expirations += 1
                else:
                    self._evictions += 1

    def discard(self, key: K) -> None:
        """Remove ``key`` if present (not counted as an eviction)."""
        with self._lock:
            self._data.pop(key, None)

    def clear(self) -> None:
        """Remove every entry (not counted as evictions)."""
        with self._lock:
            self._data.clear()

    def live_items(self) -> list[tuple[K, V]]:
        """The live entries, least recently used first (no stats touched).

        Putting them in this order into an empty cache rebuilds the LRU order.
        """
        ttl = self._ttl
        with self._lock:
            items = list(self._data.items())
        if ttl is None:
            return items
        now = self._clock()
        return [(k, e[0]) for k, e in items if now - e[1] < ttl]

    def stats(self) -> CacheStats:
        """Return a snapshot of the size and counters (see `CacheStats`)."""
        ttl = self._ttl
        now = 0.0 if ttl is None else self._clock()
        with self._lock:
            if ttl is None:
                size, total_age = len(self._data), 0.0
            else:
                ages = [now - born for _, born in self._data.values()]
                live = [age for age in ages if age < ttl]
                size, total_age = len(live), sum(live)
            return CacheStats(
                size=size,
                max_size=self._max_size,
                ttl=ttl,
                hits=self._hits,
                misses=self._misses,
                evictions=self._evictions,
                expirations=self._expirations,
                average_age=total_age / size if size else 0.0,
            )

    def __len__(self) -> int:
        """Entries held, including expired ones not purged yet."""
        return len(self._data)

    def __repr__(self) -> str:
        """Show the bounds and the current size."""
        return (
            f"{type(self).__name__}(max_size={self._max_size}, ttl={self._ttl}, "
            f"size={len(self._data)})"
        )
