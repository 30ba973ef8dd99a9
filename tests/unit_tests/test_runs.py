"""Tests for `PendingRuns`: the started runs a handler waits on."""

from __future__ import annotations

import threading
from uuid import uuid4

import pytest

from langchain_tokencal._callbacks.runs import Pending, PendingRuns
from langchain_tokencal.errors import ConfigError


def _pending(model: str = "m") -> Pending:
    return Pending(model, None, [], None)


class TestPendingRuns:
    """Put, pop and peek by run id, bounded by size and age."""

    def test_put_then_pop_takes_the_record(self) -> None:
        """A popped run is gone; popping again gives None."""
        runs = PendingRuns(10)
        run_id, pending = uuid4(), _pending()
        runs.put(run_id, pending)
        assert runs.peek(run_id) is pending
        assert runs.pop(run_id) is pending
        assert runs.pop(run_id) is None
        assert len(runs) == 0

    def test_unknown_run_is_none(self) -> None:
        """A run that never started pops and peeks as None."""
        runs = PendingRuns(10)
        assert runs.pop(uuid4()) is None
        assert runs.peek(uuid4()) is None

    def test_oldest_runs_leave_beyond_max_size(self) -> None:
        """Only the newest max_size runs are kept."""
        runs = PendingRuns(3)
        ids = [uuid4() for _ in range(5)]
        for run_id in ids:
            runs.put(run_id, _pending())
        assert len(runs) == 3
        assert [runs.peek(i) is not None for i in ids] == [
            False,
            False,
            True,
            True,
            True,
        ]

    def test_runs_expire_by_age(self) -> None:
        """A run older than ttl pops as None, and purge_expired drops it."""
        now = [0.0]
        runs = PendingRuns(10, ttl=60.0, clock=lambda: now[0])
        old, fresh = uuid4(), uuid4()
        runs.put(old, _pending())
        now[0] = 30.0
        runs.put(fresh, _pending())
        now[0] = 61.0
        assert runs.peek(old) is None
        assert runs.peek(fresh) is not None
        assert runs.purge_expired() == 1
        assert len(runs) == 1
        assert runs.pop(fresh) is not None

    def test_no_ttl_never_expires(self) -> None:
        """Without a ttl only the size bounds the map."""
        now = [0.0]
        runs = PendingRuns(10, clock=lambda: now[0])
        run_id = uuid4()
        runs.put(run_id, _pending())
        now[0] = 1e9
        assert runs.purge_expired() == 0
        assert runs.pop(run_id) is not None

    @pytest.mark.parametrize("size", [0, -1, True, 2.5])
    def test_bad_size_is_a_config_error(self, size: object) -> None:
        """max_size must be a positive integer."""
        with pytest.raises(ConfigError, match="max_size"):
            PendingRuns(size)  # type: ignore[arg-type]

    @pytest.mark.parametrize("ttl", [0, -5.0, float("nan")])
    def test_bad_ttl_is_a_config_error(self, ttl: float) -> None:
        """Ttl must be a positive number of seconds."""
        with pytest.raises(ConfigError, match="ttl"):
            PendingRuns(10, ttl=ttl)

    def test_threads_put_and_pop_without_loss(self) -> None:
        """Eight threads starting and ending runs: every run is found once."""
        runs = PendingRuns(100_000)
        found = [0] * 8

        def work(k: int) -> None:
            for _ in range(2000):
                run_id = uuid4()
                runs.put(run_id, _pending())
                found[k] += runs.pop(run_id) is not None

        threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert found == [2000] * 8
        assert len(runs) == 0

    def test_eviction_under_threads_keeps_the_bound(self) -> None:
        """Many threads over a small bound: the map never ends up above it."""
        runs = PendingRuns(16)

        def work() -> None:
            for _ in range(3000):
                runs.put(uuid4(), _pending())

        threads = [threading.Thread(target=work) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(runs) <= 16
