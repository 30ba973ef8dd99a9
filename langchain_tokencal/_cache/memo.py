"""The counters' per-message memo: ``int`` keys to small ``bytes`` records.

Lookups are far more frequent than insertions, so `RecordMemo` approximates
LRU without touching an entry on every hit, and reads take no lock.
"""

from __future__ import annotations

import threading
from itertools import islice
from operator import itemgetter
from typing import TYPE_CHECKING, cast

from langchain_tokencal._cache.ttl import CacheStats, check_bounds

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = ["RecordMemo"]

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

    Thread-safe. Lookups take no lock: `get` is ``dict.get``, atomic under
    the GIL (and internally locked on free-threaded builds). Writes, moves
    and the counters take a lock, once per call. A record is immutable, so a
    reader never sees one half-written, and an entry moved or evicted while
    being read is still the right record for its key.

    Args:
        max_size: Most entries held; at least 1.

    Raises:
        ConfigError: If ``max_size < 1``.

    Example:
        ```python
        from langchain_tokencal._cache import RecordMemo

        memo = RecordMemo(max_size=100)
        memo.put(42, b"record!")  # the last byte is the memo's
        keys = [42, 7]
        found = [memo.get(key) for key in keys]
        memo.record_lookups(keys, found)
        assert found[0][:-1] == b"record" and found[1] is None
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
    def get(self) -> Callable[[int], bytes | None]:
        """The bare lookup (``dict.get``): no statistics, no recency.

        For callers that look many keys up in their own loop; they report
        what they found with `record_lookups`.
        """
        return self._data.get

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

    def clear(self) -> None:
        """Forget every record (in place: a held `get` stays valid)."""
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
