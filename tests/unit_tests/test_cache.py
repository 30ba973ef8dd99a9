"""Tests for the bounded maps of `langchain_tokencal._cache`: TTLCache and RecordMemo."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from langchain_tokencal._cache import CacheStats, RecordMemo, TTLCache
from langchain_tokencal.errors import ConfigError


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        """Start at an arbitrary time."""
        self.now = 1000.0

    def __call__(self) -> float:
        """Return the current fake time."""
        return self.now


def lookup(memo: RecordMemo, keys: list[int]) -> list[bytes | None]:
    """Look keys up the way the counters do: bare gets, then one report."""
    found = [memo.get(key) for key in keys]
    memo.record_lookups(keys, found)
    return found


BOUNDED_MAPS = [
    pytest.param(TTLCache, id="ttl-cache"),
    pytest.param(RecordMemo, id="record-memo"),
]


class TestBounds:
    """Both bounded maps validate their bounds and report the same statistics."""

    @pytest.mark.parametrize("make", BOUNDED_MAPS)
    @pytest.mark.parametrize("max_size", [0, -1, 1.5, True])
    def test_rejects_bad_max_size(self, make, max_size):
        """A max_size below 1 (or not an int) is a ConfigError that names the rule."""
        with pytest.raises(ConfigError, match="max_size"):
            make(max_size)

    @pytest.mark.parametrize("make", BOUNDED_MAPS)
    def test_stats_of_an_untimed_map(self, make):
        """An untimed map with one entry reports its size, its bound and no age."""
        bounded = make(5)
        bounded.put(1, rec(1))
        assert bounded.stats() == CacheStats(
            size=1,
            max_size=5,
            ttl=None,
            hits=0,
            misses=0,
            evictions=0,
            expirations=0,
            average_age=0.0,
        )


class TestTTLCacheConfig:
    """Arguments are validated."""

    @pytest.mark.parametrize("ttl", [0, -5, float("nan")])
    def test_rejects_bad_ttl(self, ttl):
        """A non-positive ttl is a ConfigError that names the rule."""
        with pytest.raises(ConfigError, match="ttl"):
            TTLCache(10, ttl)

    def test_reports_bounds(self):
        """The stats report the max_size and the ttl as a float."""
        stats = TTLCache(3, 2).stats()
        assert (stats.max_size, stats.ttl) == (3, 2.0)


class TestTTLCacheLRU:
    """Size bound, LRU order and counters."""

    def test_get_counts_hits_and_misses(self):
        """A get counts a hit for a stored key and a miss otherwise."""
        cache: TTLCache[str, int] = TTLCache(4)
        cache.put("a", 1)
        assert cache.get("a") == 1
        assert cache.get("b") is None
        assert cache.get("b", 7) == 7
        stats = cache.stats()
        assert (stats.hits, stats.misses) == (1, 2)

    def test_put_evicts_least_recently_used(self):
        """Beyond max_size the least recently used entry goes and is counted."""
        cache: TTLCache[str, int] = TTLCache(2)
        cache.put("a", 1)
        cache.put("b", 2)
        cache.get("a")
        cache.put("c", 3)
        assert [cache.peek(k) for k in "abc"] == [1, None, 3]
        assert cache.stats().evictions == 1

    def test_put_replaces_and_refreshes(self):
        """Putting an existing key replaces its value and makes it most recent."""
        cache: TTLCache[str, int] = TTLCache(2)
        cache.put("a", 1)
        cache.put("b", 2)
        cache.put("a", 10)
        cache.put("c", 3)
        assert cache.peek("a") == 10
        assert cache.peek("b") is None

    def test_peek_does_not_count_or_touch(self):
        """A peek changes neither the counters nor the LRU order."""
        cache: TTLCache[str, int] = TTLCache(2)
        cache.put("a", 1)
        cache.put("b", 2)
        assert cache.peek("a") == 1
        assert cache.peek("zz") is None
        cache.put("c", 3)
        assert cache.peek("a") is None
        stats = cache.stats()
        assert (stats.hits, stats.misses) == (0, 0)

    def test_hit_rate_is_zero_before_lookups(self):
        """The hit rate is 0.0 with no lookups and hits/lookups after."""
        cache: TTLCache[str, int] = TTLCache(5)
        assert cache.stats().hit_rate == 0.0
        cache.put("a", 1)
        cache.get("a")
        cache.get("a")
        cache.get("b")
        assert cache.stats().hit_rate == pytest.approx(2 / 3)

    def test_repr_shows_bounds(self):
        """The repr names the bounds and the size."""
        assert repr(TTLCache(5, 2)) == "TTLCache(max_size=5, ttl=2.0, size=0)"


@pytest.fixture
def timed() -> tuple[TTLCache[str, int], FakeClock]:
    """A cache of 5 entries that live 10 seconds, and its hand-moved clock."""
    clock = FakeClock()
    return TTLCache(5, 10, clock=clock), clock


class TestTTLCacheExpiry:
    """Entries older than the TTL are never returned."""

    def test_expired_get_is_a_miss_and_an_expiration(self, timed):
        """An entry as old as the ttl is dropped by get, counted as both."""
        cache, clock = timed
        cache.put("a", 1)
        clock.now += 9.9
        assert cache.get("a") == 1
        clock.now += 0.1
        assert cache.get("a") is None
        stats = cache.stats()
        assert (stats.hits, stats.misses, stats.expirations) == (1, 1, 1)
        assert len(cache) == 0

    def test_peek_hides_expired(self, timed):
        """A peek never shows an expired entry."""
        cache, clock = timed
        cache.put("a", 1)
        clock.now += 5
        cache.put("b", 2)
        clock.now += 6
        assert cache.peek("a") is None
        assert cache.peek("b") == 2

    def test_stats_average_age_and_live_size(self, timed):
        """The stats count live entries only and averages their ages."""
        cache, clock = timed
        cache.put("a", 1)
        clock.now += 4
        cache.put("b", 2)
        clock.now += 2
        stats = cache.stats()
        assert stats.size == 2
        assert stats.average_age == pytest.approx((6 + 2) / 2)
        clock.now += 5  # "a" is 11 s old: expired, not yet purged
        assert cache.stats().size == 1
        assert cache.stats().average_age == pytest.approx(7)

    def test_eviction_of_expired_entry_counts_as_expiration(self):
        """Making room by dropping an expired entry is an expiration, not an eviction."""
        clock = FakeClock()
        cache: TTLCache[str, int] = TTLCache(1, 1, clock=clock)
        cache.put("a", 1)
        clock.now += 2
        cache.put("b", 2)
        stats = cache.stats()
        assert (stats.evictions, stats.expirations) == (0, 1)


class TestTTLCacheThreads:
    """The lock keeps the cache consistent under threads."""

    def test_concurrent_use_keeps_invariants(self):
        """Eight threads hammering one cache leave it bounded and its counts exact."""
        cache: TTLCache[int, int] = TTLCache(16)
        barrier = threading.Barrier(8)

        def work(seed: int) -> None:
            barrier.wait()
            for i in range(2000):
                key = (seed * 7 + i) % 40
                if i % 3:
                    cache.get(key)
                else:
                    cache.put(key, i)

        threads = [threading.Thread(target=work, args=(s,)) for s in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        stats = cache.stats()
        gets = 8 * sum(1 for i in range(2000) if i % 3)
        assert stats.hits + stats.misses == gets
        assert len(cache) <= 16


class CacheMachine(RuleBasedStateMachine):
    """Random operations against a model of what the cache may return."""

    def __init__(self) -> None:
        """Start with an empty cache at a fixed time."""
        super().__init__()
        self.clock = FakeClock()
        self.ttl = 5.0
        self.cache: TTLCache[int, int] = TTLCache(4, self.ttl, clock=self.clock)
        self.written: dict[int, tuple[int, float]] = {}
        self.gets = 0

    @rule(key=st.integers(0, 9), value=st.integers())
    def put(self, key: int, value: int) -> None:
        """Store a value and remember when."""
        self.cache.put(key, value)
        self.written[key] = (value, self.clock.now)

    @rule(key=st.integers(0, 9))
    def get(self, key: int) -> None:
        """A returned value is the latest written and younger than the TTL."""
        self.gets += 1
        got = self.cache.get(key)
        if got is not None:
            value, born = self.written[key]
            assert got == value
            assert self.clock.now - born < self.ttl

    @rule(key=st.integers(0, 9))
    def peek(self, key: int) -> None:
        """Peek never shows an expired value."""
        got = self.cache.peek(key)
        if got is not None:
            assert self.clock.now - self.written[key][1] < self.ttl

    @rule(dt=st.floats(0, 3))
    def tick(self, dt: float) -> None:
        """Let time pass."""
        self.clock.now += dt

    @invariant()
    def bounded(self) -> None:
        """The cache never exceeds max_size."""
        assert len(self.cache) <= 4

    @invariant()
    def counts_lookups(self) -> None:
        """Hits plus misses equal the get() calls."""
        stats = self.cache.stats()
        assert stats.hits + stats.misses == self.gets


TestCacheMachine = CacheMachine.TestCase
TestCacheMachine.settings = settings(
    max_examples=60, stateful_step_count=40, deadline=None
)


class TestTTLCacheProperties:
    """Invariants over random operation sequences."""

    @given(
        max_size=st.integers(1, 8),
        ops=st.lists(st.tuples(st.booleans(), st.integers(0, 20)), max_size=200),
    )
    def test_never_exceeds_max_size(self, max_size, ops):
        """Whatever the operations, the cache holds at most max_size entries."""
        cache: TTLCache[int, int] = TTLCache(max_size)
        for is_put, key in ops:
            if is_put:
                cache.put(key, key)
            else:
                cache.get(key)
            assert len(cache) <= max_size

    @given(keys=st.lists(st.integers(0, 5), max_size=100))
    def test_hits_plus_misses_equals_gets(self, keys):
        """The hits plus misses equal the number of get() calls."""
        cache: TTLCache[int, int] = TTLCache(3)
        for i, key in enumerate(keys):
            if i % 2:
                cache.put(key, i)
            cache.get(key)
        stats = cache.stats()
        assert stats.hits + stats.misses == len(keys)


def rec(value: int) -> bytes:
    """A record: eight payload bytes and a stamp byte the memo overwrites."""
    return value.to_bytes(8, "little") + b"\xff"


class TestRecordMemo:
    """The counters' per-message memo: int keys, bytes records, nearly LRU."""

    def test_lookups_count_hits_and_misses(self):
        """Reported lookups return each stored record (or None) and count every key."""
        memo = RecordMemo(8)
        memo.put(1, rec(10))
        memo.put(2, rec(20))
        found = lookup(memo, [2, 3, 1])
        assert [r and r[:-1] for r in found] == [rec(20)[:-1], None, rec(10)[:-1]]
        stats = memo.stats()
        assert (stats.hits, stats.misses, stats.size) == (2, 1, 2)

    def test_put_overwrites_the_stamp_byte(self):
        """The last byte of a stored record is the memo's, the rest is kept."""
        memo = RecordMemo(8)
        memo.put(1, rec(10))
        stored = memo.get(1)
        assert stored is not None
        assert stored[:-1] == rec(10)[:-1]
        assert stored[-1] == 0

    def test_evicts_oldest_beyond_max_size(self):
        """Beyond max_size the oldest insertions go, and are counted."""
        memo = RecordMemo(3)
        for key in range(5):
            memo.put(key, rec(key))
        assert [memo.get(k) is not None for k in range(5)] == [False] * 2 + [True] * 3
        stats = memo.stats()
        assert (stats.size, stats.max_size, stats.evictions) == (3, 3, 2)

    def test_evicts_in_batches(self):
        """A large memo evicts max_size // 64 extra entries at a time, never more."""
        memo = RecordMemo(640)
        for key in range(641):
            memo.put(key, rec(key))
        assert len(memo) == 640 - 10
        assert memo.stats().evictions == 11
        assert memo.get(10) is None
        assert memo.get(11) is not None

    def test_entries_in_use_survive(self):
        """An entry hit as often as every half of the size is never evicted."""
        memo = RecordMemo(64)
        memo.put(-1, rec(1))
        for key in range(1000):
            memo.put(key, rec(key))
            if key % 30 == 0:
                assert lookup(memo, [-1])[0] is not None
        assert memo.get(-1) is not None

    def test_entries_not_used_are_evicted(self):
        """An entry not hit for max_size insertions is gone."""
        memo = RecordMemo(64)
        memo.put(-1, rec(1))
        lookup(memo, [-1])
        for key in range(64):
            memo.put(key, rec(key))
        assert memo.get(-1) is None

    def test_repr_shows_bound_and_size(self):
        """The repr names the bound and the size."""
        memo = RecordMemo(5)
        memo.put(1, rec(1))
        assert repr(memo) == "RecordMemo(max_size=5, size=1)"

    def test_concurrent_use_keeps_invariants(self):
        """Eight threads looking up and storing leave the memo bounded and counted."""
        memo = RecordMemo(16)
        barrier = threading.Barrier(8)

        def work(seed: int) -> None:
            barrier.wait()
            for i in range(2000):
                key = (seed * 7 + i) % 40
                if i % 3:
                    found = lookup(memo, [key, key + 1])
                    assert all(
                        r is None or r[:-1] == rec(k)[:-1]
                        for r, k in zip(found, [key, key + 1], strict=True)
                    )
                else:
                    memo.put(key, rec(key))

        threads = [threading.Thread(target=work, args=(s,)) for s in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        stats = memo.stats()
        assert stats.hits + stats.misses == 8 * 2 * sum(1 for i in range(2000) if i % 3)
        assert len(memo) <= 16

    @given(
        max_size=st.integers(1, 40),
        ops=st.lists(st.tuples(st.booleans(), st.integers(0, 60)), max_size=300),
    )
    def test_model(self, max_size, ops):
        """Bounded, counted, and a found record is the last one stored for its key."""
        memo = RecordMemo(max_size)
        latest: dict[int, int] = {}
        lookups = 0
        for i, (is_put, key) in enumerate(ops):
            if is_put:
                memo.put(key, rec(i))
                latest[key] = i
            else:
                (found,) = lookup(memo, [key])
                lookups += 1
                if found is not None:
                    assert found[:-1] == rec(latest[key])[:-1]
            assert len(memo) <= max_size
        stats = memo.stats()
        assert stats.hits + stats.misses == lookups
