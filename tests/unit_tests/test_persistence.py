"""A handler's calibration survives restarts and is shared through a store."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import HumanMessage, SystemMessage

from langchain_tokencal import TokenCalibrationHandler
from langchain_tokencal.errors import ConfigError, TokenCalError
from langchain_tokencal.events import EventError
from langchain_tokencal.storage import StoreError
from langchain_tokencal.testing import FakeUsageChatModel

CANARY = "quokka-canary-5521"
MODEL = "fake-claude"

# A worker process: learns from `calls` fake calls through the callback path,
# then flushes to the store. Every message carries the canary.
WORKER = textwrap.dedent(
    """
    import sys
    import time
    from langchain_core.messages import HumanMessage, SystemMessage
    from langchain_tokencal import TokenCalibrationHandler
    from langchain_tokencal.testing import FakeUsageChatModel

    url, worker, calls = sys.argv[1], sys.argv[2], int(sys.argv[3])
    handler = TokenCalibrationHandler(store=url, sync_interval=0.05)
    handler.raise_error = True
    llm = FakeUsageChatModel(model="fake-claude")
    history = [SystemMessage("Be brief. {canary}")]
    for i in range(calls):
        history.append(HumanMessage(f"worker {{worker}} question {{i}} {canary}"))
        history.append(llm.invoke(history, config={{"callbacks": [handler]}}))
    handler.count_messages(history, model="fake-claude")
    # Four writers on a loaded machine can outwait a write lock: flush says
    # so (False) and the next attempt goes through, as the handler's own
    # background retries would.
    for attempt in range(5):
        if handler.flush():
            break
        time.sleep(0.2 * (attempt + 1))
    else:
        raise AssertionError("store unreachable")
    handler.close()
    """
).format(canary=CANARY)


def _run_worker(url: str, worker: str, calls: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONHASHSEED": worker}
    return subprocess.Popen(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", WORKER, url, worker, str(calls)], env=env
    )


def _talk(handler: TokenCalibrationHandler, turns: int, tag: str = "") -> list:
    llm = FakeUsageChatModel(model=MODEL)
    history: list = [SystemMessage(f"Be brief. {CANARY}")]
    for i in range(turns):
        history.append(HumanMessage(f"{tag} question {i}: 東京 or Paris? {CANARY}"))
        history.append(llm.invoke(history, config={"callbacks": [handler]}))
    return history


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite store URL in this test's folder."""
    return f"sqlite:///{tmp_path / 'calibration.db'}"


def _strict(**kwargs: object) -> TokenCalibrationHandler:
    handler = TokenCalibrationHandler(**kwargs)  # type: ignore[arg-type]
    handler.raise_error = True
    return handler


class TestSqliteStore:
    """`store="sqlite:///..."`."""

    def test_a_restart_keeps_the_calibration(self, sqlite_url: str) -> None:
        """A new handler on the same file counts as the old one did."""
        first = _strict(store=sqlite_url)
        history = _talk(first, 6)
        probe = [*history, HumanMessage("One more question?")]
        before = first.estimate(probe, model=MODEL)
        first.close()
        second = _strict(store=sqlite_url)
        after = second.estimate(probe, model=MODEL)
        assert after == before
        assert after.source == "anchored"
        assert second.stats()[MODEL].observations == 6
        second.close()

    def test_another_process_learns_from_this_one(self, sqlite_url: str) -> None:
        """After a worker process's calls, this process's first estimate is calibrated."""
        assert _run_worker(sqlite_url, "1", 5).wait(timeout=120) == 0
        handler = _strict(store=sqlite_url)
        llm = FakeUsageChatModel(model=MODEL)
        prompt = [SystemMessage(f"Be brief. {CANARY}"), HumanMessage("A new question")]
        est = handler.estimate(prompt, model=MODEL)
        assert est.observations == 5
        assert est.source in {"calibrated", "anchored"}
        truth = llm.true_prompt_tokens(prompt)
        assert abs(est.tokens - truth) < abs(est.local_tokens - truth)
        handler.close()

    def test_four_writers_lose_no_observation(self, sqlite_url: str) -> None:
        """Four processes writing at once: every report reaches the store."""
        workers = [_run_worker(sqlite_url, str(n), 6) for n in range(4)]
        assert [w.wait(timeout=180) for w in workers] == [0, 0, 0, 0]
        handler = _strict(store=sqlite_url)
        stats = handler.stats()[MODEL]
        assert stats.observations == 24
        assert handler._sync.store is not None
        usage = handler._sync.store.usage()[MODEL]
        assert usage[0] > 0
        handler.close()

    def test_prompt_text_never_reaches_the_file(
        self, sqlite_url: str, tmp_path: Path
    ) -> None:
        """A canary in every message appears nowhere in the database files."""
        handler = _strict(store=sqlite_url)
        _talk(handler, 5)
        handler.flush()
        handler.close()
        files = list(tmp_path.glob("calibration.db*"))
        assert files
        for path in files:
            data = path.read_bytes()
            assert CANARY.encode() not in data
            assert "東京".encode() not in data

    def test_a_path_that_cannot_be_created_raises(self, tmp_path: Path) -> None:
        """A store path the user gave that cannot be used fails loudly."""
        blocker = tmp_path / "file"
        blocker.write_text("not a folder")
        with pytest.raises(StoreError, match="file"):
            TokenCalibrationHandler(store=f"sqlite:///{blocker / 'sub' / 'x.db'}")

    def test_unknown_scheme_is_a_config_error(self) -> None:
        """An unknown store URL names the accepted schemes."""
        with pytest.raises(ConfigError, match="sqlite"):
            TokenCalibrationHandler(store="postgres://localhost/db")


class TestStoreDown:
    """A store that is down never breaks or blocks a model call."""

    # Connections to a closed loopback port only: nothing listens there.
    pytestmark = pytest.mark.allow_hosts(["127.0.0.1"])

    def test_degrades_to_memory_with_one_warning(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Calls and counts work; one warning; flush reports the failure."""
        pytest.importorskip("redis")
        with caplog.at_level(logging.WARNING, logger="langchain_tokencal"):
            handler = _strict(store="redis://127.0.0.1:1/0", sync_interval=60)
            started = time.perf_counter()
            _talk(handler, 3)
            elapsed = time.perf_counter() - started
            est = handler.estimate([HumanMessage("hi")], model=MODEL)
            assert handler.flush() is False
            assert handler.flush() is False
        assert est.tokens > 0
        assert handler.stats()[MODEL].observations == 3
        assert elapsed < 5.0
        warnings = [r for r in caplog.records if "unreachable" in r.getMessage()]
        assert len(warnings) == 1
        handler.close()


class TestSaveLoad:
    """`handler.save(path)` and `TokenCalibrationHandler.load(path)`."""

    def test_round_trip(self, tmp_path: Path) -> None:
        """A loaded handler estimates exactly like the saved one."""
        handler = _strict()
        history = _talk(handler, 5)
        probe = [*history, HumanMessage("Next?")]
        path = tmp_path / "cal.jsonl"
        written = handler.save(path)
        assert written > 0
        loaded = TokenCalibrationHandler.load(path)
        assert loaded.estimate(probe, model=MODEL) == handler.estimate(
            probe, model=MODEL
        )
        assert CANARY not in path.read_text(encoding="utf-8")

    def test_load_into_a_store(self, tmp_path: Path, sqlite_url: str) -> None:
        """Loading with a store writes the calibration into it."""
        handler = _strict()
        _talk(handler, 4)
        path = tmp_path / "cal.jsonl"
        handler.save(path)
        TokenCalibrationHandler.load(path, store=sqlite_url).close()
        again = _strict(store=sqlite_url)
        assert again.stats()[MODEL].observations == 4
        again.close()

    def test_missing_file(self, tmp_path: Path) -> None:
        """A missing file is an EventError naming it."""
        with pytest.raises(EventError, match="missing"):
            TokenCalibrationHandler.load(tmp_path / "missing.jsonl")

    def test_foreign_file(self, tmp_path: Path) -> None:
        """A file that is not a calibration is refused, not half-read."""
        path = tmp_path / "other.jsonl"
        path.write_text('{"hello": 1}\n', encoding="utf-8")
        with pytest.raises(TokenCalError, match="not a langchain-tokencal"):
            TokenCalibrationHandler.load(path)

    def test_corrupt_lines_are_skipped(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Garbage lines are skipped with one warning; the rest loads."""
        handler = _strict()
        _talk(handler, 3)
        path = tmp_path / "cal.jsonl"
        handler.save(path)
        with path.open("a", encoding="utf-8") as out:
            out.write("{not json\n[1,2]\n")
        loaded = TokenCalibrationHandler.load(path)
        assert loaded.stats()[MODEL].observations == 3
        assert "skipped 2 malformed" in caplog.text

    def test_save_is_atomic(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A failure while writing leaves the previous file intact."""
        handler = _strict()
        _talk(handler, 2)
        path = tmp_path / "cal.jsonl"
        handler.save(path)
        before = path.read_bytes()

        def boom(self: Path, target: Path) -> Path:
            msg = "disk full"
            raise OSError(28, msg)

        monkeypatch.setattr(Path, "replace", boom)
        _talk(handler, 1, tag="more")
        with pytest.raises(EventError, match="disk full"):
            handler.save(path)
        assert path.read_bytes() == before
        assert [p.name for p in tmp_path.iterdir()] == ["cal.jsonl"]


class TestFromConfig:
    """`TokenCalibrationHandler.from_config` takes the store too."""

    def test_store_in_config(self, sqlite_url: str) -> None:
        """`store` and `sync_interval` are read next to the counter settings."""
        handler = TokenCalibrationHandler.from_config(
            {"store": sqlite_url, "sync_interval": 0.5, "cache_size": 100}
        )
        assert handler.config.cache_size == 100
        assert handler._sync.store is not None
        handler.close()


def _redis_fixture() -> object:
    """The session's redis-server fixture from the store tests, if usable."""
    try:
        from tests.unit_tests.test_storage_redis import (  # noqa: PLC0415 - optional
            redis_server,
        )
    except (ImportError, pytest.skip.Exception):
        return None
    return redis_server


redis_server = _redis_fixture()


@pytest.mark.skipif(
    redis_server is None or shutil.which("redis-server") is None,
    reason="needs the redis package and redis-server (CI installs both)",
)
@pytest.mark.allow_hosts(["127.0.0.1"])
class TestRedisStore:
    """`store="redis://..."`: one calibration shared by processes and machines."""

    def test_two_processes_learn_from_each_other(self, redis_server: Any) -> None:
        """After another process's calls, this process's first estimate is calibrated."""
        url = redis_server.url()
        assert _run_worker(url, "1", 5).wait(timeout=120) == 0
        handler = _strict(store=url, sync_interval=60)
        prompt = [SystemMessage(f"Be brief. {CANARY}"), HumanMessage("New question")]
        est = handler.estimate(prompt, model=MODEL)
        assert est.observations == 5
        truth = FakeUsageChatModel(model=MODEL).true_prompt_tokens(prompt)
        assert abs(est.tokens - truth) < abs(est.local_tokens - truth)
        # And while this handler lives, it picks up what others learn next.
        assert _run_worker(url, "2", 4).wait(timeout=120) == 0
        assert handler.flush()
        assert handler.stats()[MODEL].observations == 9
        handler.close()

    def test_four_writers_lose_no_observation(self, redis_server: Any) -> None:
        """Four processes writing at once: every report reaches the store."""
        url = redis_server.url()
        workers = [_run_worker(url, str(n), 6) for n in range(4)]
        assert [w.wait(timeout=180) for w in workers] == [0, 0, 0, 0]
        handler = _strict(store=url, sync_interval=60)
        assert handler.stats()[MODEL].observations == 24
        handler.close()

    def test_prompt_text_never_reaches_redis(self, redis_server: Any) -> None:
        """A canary in every message appears in no Redis key or value."""
        url = redis_server.url()
        handler = _strict(store=url, sync_interval=60)
        _talk(handler, 5)
        assert handler.flush()
        handler.close()
        client = redis_server.client()
        dump = []
        for key in client.scan_iter():
            dump.append(key)
            kind = client.type(key)
            if kind == b"stream":
                dump.extend(str(e).encode() for e in client.xrange(key))
            elif kind == b"hash":
                dump.append(str(client.hgetall(key)).encode())
            elif kind == b"set":
                dump.extend(client.smembers(key))
            elif kind == b"list":
                dump.extend(client.lrange(key, 0, -1))
            elif kind == b"string":
                dump.append(client.get(key) or b"")
        blob = b"\n".join(dump)
        assert b"fake-claude" in blob
        assert CANARY.encode() not in blob
        assert "東京".encode() not in blob
