"""Each learned event and usage increment reaches a store exactly once.

Outages an operator meets are reproduced against a real SQLite file and a
real ``redis-server``: a store that fails writes (a full disk), one that
commits and then fails (the reply is lost), another process holding the write
lock, Redis stopped and restarted, a key of the wrong type. After each, the
store holds every event the handler learned once, and the usage once.
"""

from __future__ import annotations

import sqlite3
import subprocess
import threading
import time
from collections import Counter
from contextlib import closing
from typing import TYPE_CHECKING

import pytest
import redis
from langchain_core.messages import HumanMessage, SystemMessage

from langchain_tokencal import TokenCalibrationHandler
from langchain_tokencal.events import LearnEvent
from langchain_tokencal.storage import RedisStore, SQLiteStore, Store, StoreError
from langchain_tokencal.storage import _sqlite as sqlite_backend
from langchain_tokencal.storage._base import UsageDelta
from langchain_tokencal.storage._outbox import Outbox
from langchain_tokencal.testing import FakeUsageChatModel
from tests.unit_tests.test_storage_redis import (  # noqa: F401 - a fixture
    REDIS_SERVER,
    RedisServer,
    free_port,
    redis_server,
)

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from pathlib import Path

pytestmark = pytest.mark.allow_hosts(["127.0.0.1"])

MODEL = "fake-claude"


class FlakyStore:
    """A real store behind a switch: fail before writing, or after committing.

    ``before`` failures are a full disk (nothing written); ``after`` ones are
    a lost reply (the store committed, the caller sees an error).
    """

    def __init__(self, inner: Store) -> None:
        """Wrap ``inner``; it works until told otherwise."""
        self.inner = inner
        self.url = inner.url
        self.before = 0
        self.after = 0
        self.calls = 0

    def apply_batch(
        self, events: Sequence[LearnEvent], usage: Sequence[UsageDelta] = ()
    ) -> None:
        """Apply through the inner store, failing as configured."""
        self.calls += 1
        if self.before:
            self.before -= 1
            msg = "database or disk is full"
            raise StoreError(msg)
        self.inner.apply_batch(events, usage)  # type: ignore[attr-defined]
        if self.after:
            self.after -= 1
            msg = "connection reset after the write"
            raise StoreError(msg)

    def append(self, events: Sequence[LearnEvent]) -> None:
        """Append through `apply_batch`."""
        self.apply_batch(events)

    def read(self, after: str = "") -> tuple[list[LearnEvent], str]:
        """Read from the inner store."""
        return self.inner.read(after)

    def add_usage(self, model: str, totals: Sequence[int]) -> None:
        """Add usage to the inner store."""
        self.inner.add_usage(model, totals)

    def usage(self) -> dict[str, list[int]]:
        """The inner store's usage."""
        return self.inner.usage()

    def compact(self, keep: int) -> int:
        """Compact the inner store."""
        return self.inner.compact(keep)

    def close(self) -> None:
        """Close the inner store."""
        self.inner.close()


def talk(handler: TokenCalibrationHandler, turns: int, tag: str) -> None:
    """Make ``turns`` fake calls through the callback path, learning each."""
    llm = FakeUsageChatModel(model=MODEL)
    history: list = [SystemMessage("Be brief.")]
    for i in range(turns):
        history.append(HumanMessage(f"{tag} question {i}: Paris or Lyon?"))
        history.append(llm.invoke(history, config={"callbacks": [handler]}))
    handler.count_messages(history, model=MODEL)  # learn from what is queued


def learned(handler: TokenCalibrationHandler) -> list[LearnEvent]:
    """What the handler learned itself (its journal, its own origin)."""
    events, _ = handler._sync.journal.read()
    return [e for e in events if e.origin == handler.origin]


def assert_once(store: Store, handler: TokenCalibrationHandler) -> None:
    """The store holds each event the handler learned exactly once."""
    mine = learned(handler)
    assert mine
    held, _ = store.read()
    copies = Counter(e.identity for e in held if e.origin == handler.origin)
    assert max(copies.values()) == 1
    assert set(copies) == {e.identity for e in mine}


def billed(handler: TokenCalibrationHandler) -> list[int]:
    """The handler's usage of the model as store totals (input, output, total)."""
    usage = handler.usage[MODEL]
    return [usage["input_tokens"], usage["output_tokens"], usage["total_tokens"]]


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[SQLiteStore]:
    """A real SQLite file in the test's folder."""
    store = SQLiteStore(tmp_path / "calibration.db", timeout=0.2)
    yield store
    store.close()


def flaky_handler(inner: Store) -> tuple[TokenCalibrationHandler, FlakyStore]:
    """A handler syncing with ``inner`` through a switchable failure."""
    flaky = FlakyStore(inner)
    handler = TokenCalibrationHandler(store=flaky, sync_interval=3600)  # type: ignore[arg-type]
    handler.raise_error = True
    return handler, flaky


class TestFailingWrites:
    """A store that fails writes keeps the queue as it was; nothing doubles."""

    def test_disk_full_then_back(self, sqlite_store: SQLiteStore) -> None:
        """Fifty failed pushes, then one good one: each event is stored once."""
        handler, flaky = flaky_handler(sqlite_store)
        flaky.before = 10**9  # the background thread retries too
        for round_ in range(10):
            talk(handler, 3, f"r{round_}")
            for _ in range(5):
                assert handler.flush() is False
        queued = len(handler._sync.outbox)
        assert flaky.calls >= 50
        assert queued <= len(learned(handler)) + 60  # events and usage, no copies
        flaky.before = 0
        assert handler.flush() is True
        assert len(handler._sync.outbox) == 0
        assert_once(sqlite_store, handler)
        assert sqlite_store.usage()[MODEL][:3] == billed(handler)
        handler.close()

    def test_lost_replies_are_not_applied_twice(
        self, sqlite_store: SQLiteStore
    ) -> None:
        """A store that committed but answered with an error applies the retry once."""
        handler, flaky = flaky_handler(sqlite_store)
        for round_ in range(5):
            talk(handler, 3, f"r{round_}")
            flaky.after = 3
            for _ in range(4):
                handler.flush()
        assert handler.flush() is True
        assert_once(sqlite_store, handler)
        assert sqlite_store.usage()[MODEL][:3] == billed(handler)
        handler.close()

    def test_new_handler_loads_each_report_once(
        self, tmp_path: Path, sqlite_store: SQLiteStore
    ) -> None:
        """After an outage a fresh handler replays the reports learned, not copies."""
        handler, flaky = flaky_handler(sqlite_store)
        flaky.before = 10**9
        talk(handler, 6, "a")
        for _ in range(20):
            handler.flush()
        flaky.before = 0
        flaky.after = 2  # the thread may spend some of these too
        for _ in range(2):
            handler.flush()
        assert handler.flush() is True
        reports = handler.stats()[MODEL].observations
        handler.close()
        fresh = TokenCalibrationHandler(
            store=f"sqlite:///{tmp_path / 'calibration.db'}"
        )
        assert fresh.stats()[MODEL].observations == reports
        fresh.close()

    def test_queue_is_bounded_and_drops_are_counted(self) -> None:
        """Past its bound the queue drops its oldest items and counts them."""
        outbox = Outbox("me", limit=100, batch=10)
        dead = FlakyStore(SQLiteStoreStub())
        dead.before = 10**9
        for i in range(30):
            outbox.queue([LearnEvent(MODEL, "residual", (0.01,), "me", 0.0)] * 10)
            outbox.bill(MODEL, [i + 1, 1, i + 2, 0, 0, 0, 0, 0])
            with pytest.raises(StoreError):
                outbox.push(dead)  # type: ignore[arg-type]
        assert len(outbox) == 100
        assert outbox.dropped == 300 + 30 - 100


class SQLiteStoreStub:
    """A store that never gets a write (its wrapper fails first)."""

    url = "stub://"


class TestLockContention:
    """Another process holding the write lock makes a push wait or fail, not double."""

    def test_lock_held_then_released(self, tmp_path: Path) -> None:
        """Pushes that time out on the lock are retried; each event lands once."""
        path = tmp_path / "calibration.db"
        handler = TokenCalibrationHandler(
            store=f"sqlite:///{path}?timeout=0.05", sync_interval=3600
        )
        with closing(sqlite3.connect(path, isolation_level=None)) as other:
            other.execute("BEGIN IMMEDIATE")
            for round_ in range(4):
                talk(handler, 3, f"r{round_}")
                assert handler.flush() is False
            other.execute("ROLLBACK")
        assert handler.flush() is True
        with closing(SQLiteStore(path)) as store:
            assert_once(store, handler)
            assert store.usage()[MODEL][:3] == billed(handler)
        handler.close()


class TestSQLiteIdentity:
    """The file refuses a second copy of an identity, and old files migrate."""

    def test_a_repeated_batch_changes_nothing(self, sqlite_store: SQLiteStore) -> None:
        """The same batch applied three times is held once, usage added once."""
        events = [
            LearnEvent(MODEL, "residual", (0.1,), "o", 0.0, seq) for seq in (1, 2)
        ]
        usage = [UsageDelta(MODEL, (5, 1, 6, 0, 0, 0, 0, 0), "o", 3)]
        for _ in range(3):
            sqlite_store.apply_batch(events, usage)
        assert sqlite_store.read()[0] == events
        assert sqlite_store.usage() == {MODEL: [5, 1, 6, 0, 0, 0, 0, 0]}

    def test_compacted_identities_stay_applied(self, sqlite_store: SQLiteStore) -> None:
        """An event deleted by compaction is not appended again by a late retry."""
        events = [
            LearnEvent(MODEL, "residual", (0.1,), "o", 0.0, seq) for seq in (1, 2)
        ]
        sqlite_store.apply_batch(events)
        sqlite_store.compact(0)
        sqlite_store.apply_batch(events)
        assert sqlite_store.read()[0] == []

    def test_version_1_file_is_migrated(self, tmp_path: Path) -> None:
        """A file of schema 1 keeps its rows and gains identities."""
        path = tmp_path / "old.db"
        with closing(sqlite3.connect(path, isolation_level=None)) as conn:
            sqlite_backend.MIGRATIONS[1](conn)
            conn.execute("PRAGMA user_version = 1")
            conn.execute(
                "INSERT INTO tokencal_events (model, line) VALUES (?, ?)",
                (MODEL, '["fake-claude","residual",[0.5],"old",0.0]'),
            )
        with closing(SQLiteStore(path)) as store:
            new = LearnEvent(MODEL, "residual", (0.2,), "o", 0.0, 1)
            store.apply_batch([new])
            store.apply_batch([new])
            events, _ = store.read()
        assert [e.origin for e in events] == ["old", "o"]
        with closing(sqlite3.connect(path)) as conn:
            assert conn.execute("PRAGMA user_version").fetchone() == (3,)


def start_redis(folder: Path, port: int) -> subprocess.Popen[bytes]:
    """A redis-server on ``port`` with an fsync'ed append-only file in ``folder``."""
    assert REDIS_SERVER is not None
    command = [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1"]
    command += ["--save", "", "--appendonly", "yes", "--appendfsync", "always"]
    command += ["--dir", str(folder)]
    proc = subprocess.Popen(  # noqa: S603 - the system's redis-server
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    client = redis.Redis(port=port, socket_timeout=1)
    deadline = time.monotonic() + 10
    while not _answers(client):
        if time.monotonic() > deadline:
            proc.terminate()
            pytest.fail("redis-server did not start")
        time.sleep(0.05)
    client.close()
    return proc


def _answers(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False


def stop_redis(proc: subprocess.Popen[bytes]) -> None:
    """Stop a server started by `start_redis`."""
    proc.terminate()
    proc.wait(timeout=10)


class TestRedisOutages:
    """Redis down, restarted, answering late or holding a wrong key: once each."""

    def test_stopped_and_restarted(self, tmp_path: Path) -> None:
        """Events learned while Redis is down are stored once when it is back."""
        port = free_port()
        proc = start_redis(tmp_path, port)
        url = f"redis://127.0.0.1:{port}/0?prefix=t:"
        handler = TokenCalibrationHandler(store=url, sync_interval=3600)
        try:
            talk(handler, 3, "before")
            assert handler.flush() is True
            stop_redis(proc)
            for round_ in range(5):
                talk(handler, 2, f"down{round_}")
                assert handler.flush() is False
            proc = start_redis(tmp_path, port)
            assert handler.flush() is True
            with closing(RedisStore(url)) as store:
                assert_once(store, handler)
                assert store.usage()[MODEL][:3] == billed(handler)
        finally:
            handler.close()
            stop_redis(proc)

    def test_lost_replies(self, redis_server: RedisServer) -> None:  # noqa: F811
        """A script that ran but whose reply was lost is not applied twice."""
        inner = RedisStore(redis_server.url())
        handler, flaky = flaky_handler(inner)
        for round_ in range(4):
            talk(handler, 3, f"r{round_}")
            flaky.after = 2
            for _ in range(3):
                handler.flush()
        assert handler.flush() is True
        assert_once(inner, handler)
        assert inner.usage()[MODEL][:3] == billed(handler)
        handler.close()

    def test_wrong_type_key_writes_nothing(self, redis_server: RedisServer) -> None:  # noqa: F811
        """A usage key of the wrong type fails the whole batch; fixed, it lands once."""
        url = redis_server.url()
        prefix = url.rsplit("prefix=", 1)[1]
        handler = TokenCalibrationHandler(store=url, sync_interval=3600)
        with closing(redis_server.client()) as client:
            client.set(f"{prefix}usage:{MODEL}", "not a hash")
            talk(handler, 3, "a")
            for _ in range(3):
                assert handler.flush() is False
            assert client.xlen(f"{prefix}events") == 0
            assert "WRONGTYPE" in (handler.store_error or "")
            client.delete(f"{prefix}usage:{MODEL}")
        assert handler.flush() is True
        with closing(RedisStore(url)) as store:
            assert_once(store, handler)
            assert store.usage()[MODEL][:3] == billed(handler)
        handler.close()

    def test_repeated_batch(self, redis_server: RedisServer) -> None:  # noqa: F811
        """The same batch applied three times is held once, usage added once."""
        with closing(RedisStore(redis_server.url())) as store:
            events = [
                LearnEvent(MODEL, "residual", (0.1,), "o", 0.0, seq) for seq in (1, 2)
            ]
            usage = [UsageDelta(MODEL, (5, 1, 6, 0, 0, 0, 0, 0), "o", 3)]
            for _ in range(3):
                store.apply_batch(events, usage)
            assert store.read()[0] == events
            assert store.usage() == {MODEL: [5, 1, 6, 0, 0, 0, 0, 0]}

    def test_concurrent_flushes(self, redis_server: RedisServer) -> None:  # noqa: F811
        """Flushes racing the background thread still store each event once."""
        url = redis_server.url()
        handler = TokenCalibrationHandler(store=url, sync_interval=0.01)
        talk(handler, 4, "a")
        threads = [threading.Thread(target=handler.flush) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert handler.flush() is True
        with closing(RedisStore(url)) as store:
            assert_once(store, handler)
        handler.close()


class TestLoadIntoAStore:
    """A file loaded into a handler with a store is applied once, not again on pull."""

    def test_loaded_events_are_not_replayed_twice(self, tmp_path: Path) -> None:
        """The loaded handler's statistics match the saved one's after a sync."""
        source = TokenCalibrationHandler()
        talk(source, 6, "a")
        file = tmp_path / "cal.jsonl"
        source.save(file)
        url = f"sqlite:///{tmp_path / 'calibration.db'}"
        loaded = TokenCalibrationHandler.load(file, store=url, sync_interval=3600)
        assert loaded.flush() is True
        assert loaded.flush() is True
        assert loaded.stats()[MODEL].observations == source.stats()[MODEL].observations
        with closing(SQLiteStore(tmp_path / "calibration.db")) as store:
            held = Counter(e.identity for e in store.read()[0])
        assert max(held.values()) == 1
        loaded.close()
