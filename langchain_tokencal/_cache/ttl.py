"""Bounded maps with least-recently-used eviction and statistics.

`TTLCache` is an exact LRU map with an optional TTL, for state that must not
leak, such as prompts waiting for a response that may never come (TTL-bounded),
and for the ledger. One lock guards each cache; critical sections hold no I/O
and no calls into user code, only dictionary operations.

`RecordMemo` is the counters' per-message memo: integer keys, small ``bytes``
records, lookups far more frequent than insertions. It approximates LRU
without touching entries on every hit, and reads take no lock.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from itertools import islice
from operator import itemgetter
from typing import Any, Generic, TypeVar, cast

from langchain_tokencal.errors import ConfigError

__all__ = ["CacheStats", "RecordMemo", "TTLCache", "check_bounds"]

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
        from langchain_tokencal._cache.ttl import TTLCache

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
        from langchain_tokencal._cache.ttl import check_bounds

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
    ``max_size``. `peek`, ``in`` and `items` neither count nor reorder.

    Args:
        max_size: Most entries held; at least 1.
        ttl: Seconds an entry stays valid after its last `put`, or ``None``
            for no expiry.
        clock: Monotonic time source in seconds (inject a fake one in tests).

    Raises:
        ConfigError: If ``max_size < 1`` or ``ttl <= 0``.

    Example:
        ```python
        from langchain_tokencal._cache.ttl import TTLCache

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

    @property
    def max_size(self) -> int:
        """Most entries the cache holds."""
        return self._max_size

    @property
    def ttl(self) -> float | None:
        """Seconds an entry stays valid, or ``None``."""
        return self._ttl

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

    def get_many(self, keys: Iterable[K]) -> list[V | None]:
        """Look up several keys under one lock acquisition, like repeated `get`.

        Returns:
            One value or ``None`` per key, in order.
        """
        if self._ttl is not None:
            return [self.get(key) for key in keys]
        out: list[V | None] = []
        append = out.append
        with self._lock:
            data = self._data
            move = data.move_to_end
            hits = 0
            for key in keys:
                value = data.get(key, _MISSING)
                if value is _MISSING:
                    append(None)
                else:
                    move(key)
                    hits += 1
                    append(value)
            self._hits += hits
            self._misses += len(out) - hits
        return out

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

    def pop(self, key: K, default: V | None = None) -> V | None:
        """Remove ``key`` and return its live value, else ``default`` (no hit/miss)."""
        ttl = self._ttl
        now = 0.0 if ttl is None else self._clock()
        with self._lock:
            entry = self._data.pop(key, _MISSING)
            if entry is _MISSING:
                return default
            if ttl is None:
                return cast("V", entry)
            if now - entry[1] >= ttl:
                self._expirations += 1
                return default
            return cast("V", entry[0])

    def purge_expired(self) -> int:
        """Drop every expired entry now.

        Returns:
            How many entries were dropped (0 for an untimed cache).
        """
        ttl = self._ttl
        if ttl is None:
            return 0
        now = self._clock()
        with self._lock:
            stale = [k for k, (_, born) in self._data.items() if now - born >= ttl]
            for key in stale:
                del self._data[key]
            self._expirations += len(stale)
        return len(stale)

    def clear(self) -> None:
        """Drop every entry; the counters keep their totals."""
        with self._lock:
            self._data.clear()

    def items(self) -> list[tuple[K, V]]:
        """Return a snapshot of the live entries, least recently used first."""
        ttl = self._ttl
        with self._lock:
            snapshot = list(self._data.items())
        if ttl is None:
            return cast("list[tuple[K, V]]", snapshot)
        now = self._clock()
        return [(k, v) for k, (v, born) in snapshot if now - born < ttl]

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

    def __contains__(self, key: object) -> bool:
        """Whether ``key`` has a live entry (no stats, no LRU touch)."""
        data: dict[Any, Any] = self._data
        with self._lock:
            entry = data.get(key, _MISSING)
        if entry is _MISSING:
            return False
        return self._ttl is None or self._clock() - entry[1] < self._ttl

    def __repr__(self) -> str:
        """Show the bounds and the current size."""
        return (
            f"{type(self).__name__}(max_size={self._max_size}, ttl={self._ttl}, "
            f"size={len(self._data)})"
        )


_last_byte = itemgetter(-1)


class RecordMemo:
    """A size-bounded map from ``int`` keys to ``bytes`` records, nearly LRU.

    Built for many small entries read far more often than written: a plain
    ``dict`` (about 35 bytes a slot, against 75 for an ``OrderedDict``), and
    no reordering on a hit. The last byte of every stored record is the memo's
    own *stamp*: `put` overwrites it with the current epoch (the epoch moves on
    every ``max_size // 4`` insertions), and once the memo is over half full
    a hit on a record stamped in an earlier epoch moves it to the end of the
    map, restamped. Eviction drops the entries inserted or moved longest ago,
    in batches of ``max_size // 64 + 1`` (``dict`` has no cheap pop-oldest).
    So an entry hit within the last ``max_size // 2 - max_size // 64``
    insertions is never evicted, and one not hit since ``max_size``
    insertions always is: LRU up to half the size.

    Thread-safe. Lookups take no lock: `get_many` and `get` are ``dict.get``
    calls, atomic under the GIL (and internally locked on free-threaded
    builds). Writes, moves and the counters take a lock, once per call. A
    record is immutable, so a reader never sees one half-written, and an
    entry moved or evicted while being read is still the right record for
    its key.

    Args:
        max_size: Most entries held; at least 1.

    Raises:
        ConfigError: If ``max_size < 1``.

    Example:
        ```python
        from langchain_tokencal._cache.ttl import RecordMemo

        memo = RecordMemo(max_size=100)
        memo.put(42, b"record!")  # the last byte is the memo's
        (found, missing) = memo.get_many([42, 7])
        assert found[:-1] == b"record" and missing is None
        assert memo.stats().hits == 1
        ```
    """

    __slots__ = (
        "_data",
        "_evictions",
        "_hits",
        "_inserted",
        "_lock",
        "_max_size",
        "_misses",
        "_period",
        "_slack",
        "_stamp",
    )

    def __init__(self, max_size: int) -> None:
        """Create an empty memo (see the class docstring)."""
        check_bounds(max_size, None)
        self._max_size = max_size
        self._period = max(1, max_size // 4)
        self._slack = max_size // 64
        self._data: dict[int, bytes] = {}
        self._lock = threading.Lock()
        self._stamp = 0
        self._inserted = 0
        self._hits = 0
        self._misses = 0
        self._evictions = 0

    @property
    def max_size(self) -> int:
        """Most entries the memo holds."""
        return self._max_size

    @property
    def get(self) -> Callable[[int], bytes | None]:
        """The bare lookup (``dict.get``): no statistics, no recency.

        For callers that look many keys up in their own loop; they report
        what they found with `record_lookups`.
        """
        return self._data.get

    def get_many(self, keys: Sequence[int]) -> list[bytes | None]:
        """Look up keys: one record (its last byte is the stamp) or None each.

        Counts a hit or a miss per key, and moves the hit entries stamped in
        an earlier epoch to the end.
        """
        found = list(map(self._data.get, keys))
        self.record_lookups(keys, found)
        return found

    def record_lookups(
        self, keys: Sequence[int], found: Sequence[bytes | None]
    ) -> None:
        """Count the hits and misses of lookups made with `get`, and mark recency.

        Args:
            keys: The keys looked up.
            found: What `get` returned for each.
        """
        misses = found.count(None)
        # Recency only matters once eviction is near: below half the size no
        # entry can be evicted before it is hit again or the memo grows.
        if misses < len(found) and 2 * len(self._data) > self._max_size:
            stamp = self._stamp
            if not misses:
                # Usually every stamp matches: checked in C, one pass.
                records = cast("Sequence[bytes]", found)
                if bytes(map(_last_byte, records)).count(stamp) < len(records):
                    self._move_to_end(keys, records, stamp)
            else:
                self._move_to_end(keys, found, stamp)
        with self._lock:
            self._hits += len(found) - misses
            self._misses += misses

    def _move_to_end(
        self, keys: Sequence[int], found: Sequence[bytes | None], stamp: int
    ) -> None:
        """Restamp the hit entries of earlier epochs and move them to the end."""
        stale = [
            (key, record)
            for key, record in zip(keys, found, strict=True)
            if record is not None and record[-1] != stamp
        ]
        if not stale:
            return
        with self._lock:
            data = self._data
            tail = bytes((self._stamp,))
            for key, record in stale:
                if data.pop(key, None) is not None:  # not evicted meanwhile
                    data[key] = record[:-1] + tail

    def put(self, key: int, record: bytes) -> None:
        """Store a record (its last byte is overwritten with the stamp).

        Evicts the oldest entries when the memo is over ``max_size``.
        """
        with self._lock:
            data = self._data
            data[key] = record[:-1] + bytes((self._stamp,))
            self._inserted += 1
            if self._inserted >= self._period:
                self._inserted = 0
                self._stamp = (self._stamp + 1) & 0xFF
            excess = len(data) - self._max_size
            if excess > 0:
                # One scan from the start per batch: dict iteration walks over
                # the slots of deleted entries, so popping one at a time from
                # the front would be quadratic.
                excess += self._slack
                for old in list(islice(data, excess)):
                    del data[old]
                self._evictions += excess

    def items(self) -> list[tuple[int, bytes]]:
        """Return a snapshot of the entries, oldest first."""
        with self._lock:
            return list(self._data.items())

    def clear(self) -> None:
        """Drop every entry; the counters keep their totals."""
        with self._lock:
            self._data.clear()

    def stats(self) -> CacheStats:
        """Return a snapshot of the size and counters (see `CacheStats`)."""
        with self._lock:
            return CacheStats(
                size=len(self._data),
                max_size=self._max_size,
                ttl=None,
                hits=self._hits,
                misses=self._misses,
                evictions=self._evictions,
                expirations=0,
                average_age=0.0,
            )

    def __len__(self) -> int:
        """Entries held."""
        return len(self._data)

    def __repr__(self) -> str:
        """Show the bound and the current size."""
        return (
            f"{type(self).__name__}(max_size={self._max_size}, size={len(self._data)})"
        )
