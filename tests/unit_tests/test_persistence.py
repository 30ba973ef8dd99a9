"""A handler's calibration survives restarts and is shared through a store."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
import time
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from langchain_core.messages import HumanMessage, SystemMessage

from langchain_tokencal import TokenCalibrationHandler
from langchain_tokencal.errors import ConfigError, TokenCalError
from langchain_tokencal.events import EventError
from langchain_tokencal.storage import StoreError, open_store
from langchain_tokencal.testing import FakeUsageChatModel
from tests.unit_tests.test_storage_redis import (  # noqa: F401 - a fixture
    redis_server,
)
from tests.unit_tests.test_storage_sqlite import file_bytes

if TYPE_CHECKING:
    from collections.abc import Callable

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


@pytest.fixture(params=["sqlite", "redis"])
def shared(
    request: pytest.FixtureRequest, tmp_path: Path
) -> tuple[str, Callable[[], bytes]]:
    """A fresh store processes share, and how to dump all it holds."""
    if request.param == "sqlite":
        path = tmp_path / "calibration.db"
        return f"sqlite:///{path}", lambda: file_bytes(path)
    server = request.getfixturevalue("redis_server")
    return server.url(), server.dump


@pytest.fixture
def saved(tmp_path: Path) -> tuple[TokenCalibrationHandler, list, Path]:
    """A handler after three calls, its history, and the file it saved."""
    handler = _strict()
    history = _talk(handler, 3)
    path = tmp_path / "cal.jsonl"
    assert handler.save(path) > 0
    return handler, history, path


class TestSharedStore:
    """One calibration shared by processes, in a SQLite file or on Redis."""

    # The Redis runs reach the test server on 127.0.0.1.
    pytestmark = pytest.mark.allow_hosts(["127.0.0.1"])

    def test_processes_learn_from_each_other(
        self, shared: tuple[str, Callable[[], bytes]]
    ) -> None:
        """After another process's calls, this process's first estimate is calibrated."""
        url, _ = shared
        assert _run_worker(url, "1", 5).wait(timeout=120) == 0
        handler = _strict(store=url, sync_interval=60)
        prompt = [SystemMessage(f"Be brief. {CANARY}"), HumanMessage("New question")]
        est = handler.estimate(prompt, model=MODEL)
        assert est.observations == 5
        assert est.source in {"calibrated", "anchored"}
        truth = FakeUsageChatModel(model=MODEL).true_prompt_tokens(prompt)
        assert abs(est.tokens - truth) < abs(est.local_tokens - truth)
        # And while this handler lives, it picks up what others learn next.
        assert _run_worker(url, "2", 4).wait(timeout=120) == 0
        assert handler.flush()
        assert handler.stats()[MODEL].observations == 9
        handler.close()

    def test_four_writers_lose_no_observation(
        self, shared: tuple[str, Callable[[], bytes]]
    ) -> None:
        """Four processes writing at once: every report reaches the store."""
        url, _ = shared
        workers = [_run_worker(url, str(n), 6) for n in range(4)]
        assert [w.wait(timeout=180) for w in workers] == [0, 0, 0, 0]
        handler = _strict(store=url, sync_interval=60)
        assert handler.stats()[MODEL].observations == 24
        handler.close()
        with closing(open_store(url)) as store:
            assert store.usage()[MODEL][0] > 0

    def test_prompt_text_never_reaches_the_store(
        self, shared: tuple[str, Callable[[], bytes]]
    ) -> None:
        """A canary in every message appears nowhere in what the store holds."""
        url, dump = shared
        handler = _strict(store=url, sync_interval=60)
        _talk(handler, 5)
        assert handler.flush()
        handler.close()
        held = dump()
        assert MODEL.encode() in held  # the look is not blind
        assert CANARY.encode() not in held
        assert "東京".encode() not in held


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

    @pytest.mark.parametrize(
        "url",
        [
            pytest.param("redis://me:hunter2@127.0.0.1:1/0", id="user-password"),
            pytest.param("redis://:hunter2@127.0.0.1:1/0", id="password-only"),
            pytest.param("redis://127.0.0.1:1/0?password=hunter2", id="query"),
            pytest.param(
                "redis://me:hunter2@127.0.0.1:1/0?db=0&password=hunter2", id="both"
            ),
        ],
    )
    def test_unreachable_warning_hides_the_password(
        self, url: str, caplog: pytest.LogCaptureFixture
    ) -> None:
        """The 'store unreachable' warning names the store without its password."""
        with caplog.at_level(logging.DEBUG, logger="langchain_tokencal"):
            handler = _strict(store=url, sync_interval=60)
            assert handler.flush() is False
        handler.close()
        (warning,) = [r for r in caplog.records if "unreachable" in r.getMessage()]
        assert "127.0.0.1:1" in warning.getMessage()
        for record in caplog.records:
            assert "hunter2" not in record.getMessage()


class TestSaveLoad:
    """`handler.save(path)` and `TokenCalibrationHandler.load(path)`."""

    def test_round_trip(
        self, saved: tuple[TokenCalibrationHandler, list, Path]
    ) -> None:
        """A loaded handler estimates exactly like the saved one."""
        handler, history, path = saved
        probe = [*history, HumanMessage("Next?")]
        loaded = TokenCalibrationHandler.load(path)
        assert loaded.estimate(probe, model=MODEL) == handler.estimate(
            probe, model=MODEL
        )
        assert CANARY not in path.read_text(encoding="utf-8")

    def test_load_into_a_store(
        self, saved: tuple[TokenCalibrationHandler, list, Path], sqlite_url: str
    ) -> None:
        """Loading with a store writes the calibration into it."""
        _, _, path = saved
        TokenCalibrationHandler.load(path, store=sqlite_url).close()
        again = _strict(store=sqlite_url)
        assert again.stats()[MODEL].observations == 3
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
        self,
        saved: tuple[TokenCalibrationHandler, list, Path],
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """Garbage lines are skipped with one warning; the rest loads."""
        _, _, path = saved
        with path.open("a", encoding="utf-8") as out:
            out.write("{not json\n[1,2]\n")
        loaded = TokenCalibrationHandler.load(path)
        assert loaded.stats()[MODEL].observations == 3
        assert "skipped 2 malformed" in caplog.text

    def test_save_is_atomic(
        self,
        saved: tuple[TokenCalibrationHandler, list, Path],
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """A failure while writing leaves the previous file intact."""
        handler, _, path = saved
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
        _talk(handler, 1)
        assert handler.flush()
        handler.close()
        with closing(open_store(sqlite_url)) as store:
            assert store.read()[0]
