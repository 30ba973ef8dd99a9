"""The store contract, MemoryStore, open_store, default_store_url, redact_url.

`StoreContract` holds the behaviour every backend shares, and
`SharedStoreContract` what every store shared by processes adds; the SQLite
and Redis test modules subclass it, each saying only how to reach a fresh
store, dump what it holds and corrupt it. `run_writers` drives real OS
processes against one store for the concurrency tests of those modules.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
import subprocess
import sys
import threading
import time
import tracemalloc
from collections import Counter
from contextlib import closing, suppress
from typing import TYPE_CHECKING, ClassVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from langchain_tokencal.errors import ConfigError, TokenCalError
from langchain_tokencal.events import LearnEvent
from langchain_tokencal.storage import (
    USAGE_FIELDS,
    MemoryStore,
    SQLiteStore,
    Store,
    StoreError,
    default_store_url,
    open_store,
    redact_url,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path


STORAGE_LOGGER = "langchain_tokencal.storage"

# What a user's prompt might hold; it must reach no store.
CANARY = "CANARY-e3b0c442 the user's secret prompt"
# What the events carry instead: a digest of the prompt's parts.
DIGEST = hashlib.sha256(CANARY.encode()).hexdigest()[:16]
CANARY_EVENTS = (
    LearnEvent("gpt-4o", "prompt", ("tools-0", DIGEST, DIGEST, 99, 120), "me", 1.0),
    LearnEvent("claude", "message", (DIGEST, 12.0), "me", 1.0),
)


def ev(i: int = 0, model: str = "gpt-4o", kind: str = "message") -> LearnEvent:
    """A small event whose first value identifies it."""
    return LearnEvent(model, kind, (i, 17.5), "test", 1_700_000_000.25)


def storage_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The warning messages the storage logger emitted."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == STORAGE_LOGGER and r.levelno == logging.WARNING
    ]


# --------------------------------------------------------------------------
# Writers in other processes
# --------------------------------------------------------------------------

# Appends `count` events in batches, one usage increment per batch, printing
# the number of events committed after each batch. Waits for a line on stdin
# before writing, so that every writer starts at once. It skips the package's
# __init__ (which imports langchain-core: seconds per process on a busy
# machine); the store modules need none of it.
WRITER = """
import importlib.util
import sys
import types

spec = importlib.util.find_spec("langchain_tokencal")
package = types.ModuleType("langchain_tokencal")
package.__path__ = list(spec.submodule_search_locations)
sys.modules["langchain_tokencal"] = package

from langchain_tokencal.events import LearnEvent
from langchain_tokencal.storage import open_store

url, origin, count, batch = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
store = open_store(url)
print("ready", flush=True)
sys.stdin.readline()
for start in range(0, count, batch):
    stop = min(start + batch, count)
    store.append(
        [LearnEvent(f"model-{i % 3}", "message", (i, start), origin, 0.0) for i in range(start, stop)]
    )
    store.add_usage(f"model-{start // batch % 3}", [1, 2, 3, 0, 0, 0, 0, 7])
    print(stop, flush=True)
store.close()
"""


def start_writer(
    url: str, origin: str, count: int, batch: int
) -> subprocess.Popen[str]:
    """Start one writer process and wait until it has opened the store."""
    proc = subprocess.Popen(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", WRITER, url, origin, str(count), str(batch)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line == "ready\n", f"writer failed to start (exit {proc.wait()})"
    return proc


def run_writers(
    url: str, *, workers: int = 4, count: int = 500, batch: int = 10
) -> tuple[list[LearnEvent], list[LearnEvent], dict[str, list[int]]]:
    """Run writers at once while this process follows them with cursors.

    The writers open the store first (creating it when it does not exist);
    the reader opens it once they all have.

    Returns:
        What the incremental reads saw, what one read from the start sees at
        the end, and the usage totals.
    """
    procs = [start_writer(url, f"w{n}", count, batch) for n in range(workers)]
    with closing(open_store(url)) as reader:
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.close()
        seen: list[LearnEvent] = []
        cursor = ""
        while any(proc.poll() is None for proc in procs):
            events, cursor = reader.read(after=cursor)
            seen += events
            with suppress(subprocess.TimeoutExpired):
                procs[0].wait(timeout=0.02)  # pace the polling without sleeping blind
        for proc in procs:
            assert proc.stdout is not None
            proc.stdout.read()
            proc.stdout.close()
            assert proc.wait() == 0
        events, cursor = reader.read(after=cursor)
        return seen + events, reader.read()[0], reader.usage()


def check_writers(
    events: list[LearnEvent], usage: dict[str, list[int]], *, workers: int = 4
) -> None:
    """Every writer's 500 events are there once, in its order; usage is exact."""
    assert len(events) == workers * 500
    by_origin: dict[str, list[int]] = {}
    for event in events:
        by_origin.setdefault(event.origin, []).append(int(event.values[0]))
    assert by_origin == {f"w{n}": list(range(500)) for n in range(workers)}
    batches = Counter(f"model-{b % 3}" for b in range(50))
    assert usage == {
        model: [n * workers * k for k in (1, 2, 3, 0, 0, 0, 0, 7)]
        for model, n in batches.items()
    }


# --------------------------------------------------------------------------
# The contract every backend meets
# --------------------------------------------------------------------------


class StoreContract:
    """Behaviour shared by every store; subclasses provide the fixtures."""

    scheme: ClassVar[str]

    @pytest.fixture
    def target(self, tmp_path: Path) -> str:
        """A URL naming a fresh, empty store."""
        raise NotImplementedError

    @pytest.fixture
    def fresh(self, tmp_path: Path) -> Callable[[], Store]:
        """A factory of new, empty stores (one per hypothesis example)."""
        raise NotImplementedError

    @pytest.fixture
    def dump(self, target: str) -> Callable[[Store], bytes]:
        """Everything the store holds, as bytes (files, keys and values...)."""
        raise NotImplementedError

    @pytest.fixture
    def store(self, target: str) -> Iterator[Store]:
        """The store ``target`` names, closed after the test."""
        store = open_store(target)
        yield store
        store.close()

    def test_is_a_store(self, store: Store) -> None:
        """The store satisfies the runtime-checkable protocol and names its scheme."""
        assert isinstance(store, Store)
        assert store.url.startswith(self.scheme)

    def test_empty_read(self, store: Store) -> None:
        """An empty store reads nothing, with an empty cursor."""
        assert store.read() == ([], "")

    def test_round_trip(self, store: Store) -> None:
        """Events come back equal and in append order, whatever their values."""
        events = [
            ev(1),
            LearnEvent("claude-sonnet-4-5", "reject", ("no usage",), "o", 2.5),
            LearnEvent("通义千问", "fit", (1, -2, 3.25, 2**53, 1e-9), "ö", 0.0),
            LearnEvent("m", "meta", ("anthropic", "alias-1"), "", 1.0),
        ]
        store.append(events[:2])
        store.append(events[2:])
        assert store.read()[0] == events

    def test_read_after_cursor(self, store: Store) -> None:
        """A cursor from one read makes the next return only newer events."""
        store.append([ev(1), ev(2)])
        _, cursor = store.read()
        store.append([ev(3)])
        assert store.read(after=cursor)[0] == [ev(3)]

    def test_read_at_end_keeps_cursor(self, store: Store) -> None:
        """Reading at the end returns nothing and the same cursor."""
        store.append([ev(1)])
        _, cursor = store.read()
        assert store.read(after=cursor) == ([], cursor)

    def test_bad_cursor(self, store: Store) -> None:
        """A cursor this kind of store never returned raises StoreError."""
        with pytest.raises(StoreError, match="not a cursor"):
            store.read(after="not-a-cursor")

    def test_append_nothing(self, store: Store) -> None:
        """Appending an empty batch changes nothing."""
        store.append([])
        assert store.read() == ([], "")

    def test_add_usage_sums(self, store: Store) -> None:
        """Usage adds element-wise per model."""
        store.add_usage("a", [1, 2, 3, 4, 5, 6, 7, 8])
        store.add_usage("a", [10, 20, 30, 0, 0, 0, 0, 1])
        store.add_usage("b", [0, 0, 0, 0, 0, 0, 0, 0])
        assert store.usage() == {
            "a": [11, 22, 33, 4, 5, 6, 7, 9],
            "b": [0] * len(USAGE_FIELDS),
        }

    def test_usage_empty(self, store: Store) -> None:
        """A store without usage reports none."""
        assert store.usage() == {}

    @pytest.mark.parametrize(
        "totals", [[1] * 7, [1] * 9, [1.5] + [0] * 7, [True] + [0] * 7]
    )
    def test_add_usage_rejects(self, store: Store, totals: list[int]) -> None:
        """Totals must be eight integers."""
        with pytest.raises(ConfigError, match="usage totals"):
            store.add_usage("a", totals)
        assert store.usage() == {}

    def test_compact_keeps_newest(self, store: Store) -> None:
        """Compaction keeps each model's newest events and reports the rest."""
        events = [ev(i, model=f"m{i % 3}") for i in range(20)] + [ev(99, model="solo")]
        store.append(events)
        assert store.compact(2) == 21 - 2 * 3 - 1
        kept = [14, 15, 16, 17, 18, 19, 99]
        assert [e.values[0] for e in store.read()[0]] == kept

    def test_compact_to_zero(self, store: Store) -> None:
        """compact(0) deletes every event and leaves usage alone."""
        store.append([ev(i) for i in range(5)])
        store.add_usage("gpt-4o", [1, 0, 1, 0, 0, 0, 0, 0])
        assert store.compact(0) == 5
        assert store.read()[0] == []
        assert store.usage() == {"gpt-4o": [1, 0, 1, 0, 0, 0, 0, 0]}

    def test_compact_keeps_cursors_valid(self, store: Store) -> None:
        """Events appended after compaction are read after an old cursor."""
        store.append([ev(1), ev(2)])
        _, cursor = store.read()
        store.compact(0)
        store.append([ev(3)])
        assert store.read(after=cursor)[0] == [ev(3)]

    def test_compact_nothing_to_do(self, store: Store) -> None:
        """Compaction below the limit deletes nothing."""
        store.append([ev(1)])
        assert store.compact(5) == 0
        assert store.read()[0] == [ev(1)]

    @pytest.mark.parametrize("keep", [-1, 1.5, True])
    def test_compact_rejects(self, store: Store, keep: int) -> None:
        """The kept count must be a non-negative integer."""
        with pytest.raises(ConfigError, match="keep"):
            store.compact(keep)

    def test_closed(self, store: Store) -> None:
        """Every call on a closed store raises StoreError; close is idempotent."""
        store.close()
        store.close()
        calls: list[Callable[[], object]] = [
            lambda: store.append([ev()]),
            store.read,
            lambda: store.add_usage("m", [0] * 8),
            store.usage,
            lambda: store.compact(1),
        ]
        for call in calls:
            with pytest.raises(StoreError, match="closed"):
                call()

    def test_threads_share_one_store(self, store: Store) -> None:
        """Threads appending and adding usage through one store lose nothing."""

        def work(n: int) -> None:
            for i in range(50):
                store.append([LearnEvent(f"m{n}", "residual", (i,), f"t{n}", 0.0)])
                store.add_usage(f"m{n}", [1, 0, 1, 0, 0, 0, 0, 0])

        threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        events = store.read()[0]
        for n in range(4):
            assert [e.values[0] for e in events if e.origin == f"t{n}"] == list(
                range(50)
            )
        assert store.usage() == {f"m{n}": [50, 0, 50, 0, 0, 0, 0, 0] for n in range(4)}

    def test_holds_no_prompt_text(
        self,
        store: Store,
        dump: Callable[[Store], bytes],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """Neither the prompt nor the environment is written; the digests are."""
        monkeypatch.setenv("TOKENCAL_CANARY", CANARY)
        store.append(CANARY_EVENTS)
        store.add_usage("gpt-4o", [120, 30, 150, 0, 0, 0, 0, 0])
        held = dump(store)
        assert CANARY.encode() not in held
        assert DIGEST.encode() in held  # the look is not blind

    def test_store_error_is_tokencal_error(self) -> None:
        """StoreError is caught by except TokenCalError."""
        assert issubclass(StoreError, TokenCalError)

    @settings(
        max_examples=15,
        deadline=None,
        # `fresh` makes a new store per example; each backend's class runs
        # this same method, which is what a contract is.
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.differing_executors,
        ],
    )
    @given(
        ops=st.lists(
            st.one_of(
                st.lists(st.integers(0, 2), min_size=1, max_size=6).map(
                    lambda ms: ("append", ms)
                ),
                st.integers(0, 3).map(lambda k: ("compact", k)),
                st.just(("read", 0)),
            ),
            max_size=12,
        )
    )
    def test_log_model(
        self, fresh: Callable[[], Store], ops: list[tuple[str, object]]
    ) -> None:
        """Any mix of appends, compactions and reads matches a plain list model."""
        store = fresh()
        live: list[LearnEvent] = []
        unread: list[LearnEvent] = []
        cursor = ""
        n = 0
        try:
            for op, arg in ops:
                if op == "append":
                    assert isinstance(arg, list)
                    batch = [ev(n + j, model=f"m{m}") for j, m in enumerate(arg)]
                    n += len(batch)
                    store.append(batch)
                    live += batch
                    unread += batch
                elif op == "compact":
                    assert isinstance(arg, int)
                    counts = Counter(e.model for e in live)
                    keepers = [
                        e
                        for i, e in enumerate(live)
                        if sum(1 for f in live[i + 1 :] if f.model == e.model) < arg
                    ]
                    assert store.compact(arg) == sum(
                        max(0, c - arg) for c in counts.values()
                    )
                    live = keepers
                    unread = [e for e in unread if e in keepers]
                else:
                    events, cursor = store.read(after=cursor)
                    assert events == unread
                    unread = []
            assert store.read()[0] == live
        finally:
            store.close()


class SharedStoreContract(StoreContract):
    """What stores that processes share add; subclasses provide ``corrupt``."""

    @pytest.fixture
    def corrupt(self, target: str) -> Callable[[Store], None]:
        """Write two undecodable entries into the store behind its back."""
        raise NotImplementedError

    def test_second_handle_shares(self, store: Store, target: str) -> None:
        """Another handle on the same target sees the events and usage."""
        store.append([ev(1)])
        store.add_usage("gpt-4o", [1, 2, 3, 0, 0, 0, 0, 0])
        with closing(open_store(target)) as other:
            assert other.read()[0] == [ev(1)]
            other.append([ev(2)])
            assert other.usage() == store.usage()
        assert store.read()[0] == [ev(1), ev(2)]

    def test_corrupt_entries_are_skipped(
        self,
        store: Store,
        corrupt: Callable[[Store], None],
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """Undecodable entries are skipped, counted in one warning; the cursor passes them."""
        store.append([ev(1)])
        corrupt(store)
        store.append([ev(2)])
        with caplog.at_level(logging.WARNING, logger=STORAGE_LOGGER):
            events, cursor = store.read()
        assert events == [ev(1), ev(2)]
        (warning,) = storage_warnings(caplog)
        assert "skipped 2 corrupt event(s)" in warning
        assert store.read(after=cursor) == ([], cursor)


# --------------------------------------------------------------------------
# MemoryStore
# --------------------------------------------------------------------------


class TestMemoryStore(StoreContract):
    """The in-process store meets the contract."""

    scheme = "memory://"

    @pytest.fixture
    def target(self, tmp_path: Path) -> str:
        """Every memory:// is a new store."""
        return "memory://"

    @pytest.fixture
    def fresh(self, tmp_path: Path) -> Callable[[], Store]:
        """Make a new empty store."""
        return MemoryStore

    @pytest.fixture
    def dump(self, target: str) -> Callable[[Store], bytes]:
        """What the store returns is all it holds."""
        return lambda store: repr((store.read(), store.usage())).encode()

    def test_each_handle_is_its_own_store(self, store: Store, target: str) -> None:
        """Another handle on memory:// is a new, empty store."""
        store.append([ev(1)])
        store.add_usage("gpt-4o", [1, 2, 3, 0, 0, 0, 0, 0])
        with closing(open_store(target)) as other:
            assert other.read() == ([], "")
            assert other.usage() == {}

    def test_max_events_bounds_each_model(self) -> None:
        """With max_events, each model keeps only its newest events."""
        store = MemoryStore(max_events=3)
        store.append([ev(i, model=f"m{i % 2}") for i in range(10)])
        assert [e.values[0] for e in store.read()[0]] == [4, 5, 6, 7, 8, 9]

    @pytest.mark.parametrize("bad", [0, -1, 1.5, True, "3"])
    def test_max_events_rejects(self, bad: object) -> None:
        """max_events must be a positive integer."""
        with pytest.raises(ConfigError, match="max_events"):
            MemoryStore(max_events=bad)  # type: ignore[arg-type]

    def test_many_drops_are_swept(self) -> None:
        """Dropped slots are swept out, so memory follows the live events."""
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            store = MemoryStore(max_events=10)
            for i in range(20_000):
                store.append([ev(i)])
            grown = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
        # Keeping a slot per dropped event would hold about 1 MB here.
        assert grown < 200_000
        assert [e.values[0] for e in store.read()[0]] == list(range(19_990, 20_000))

    @settings(max_examples=50, deadline=None)
    @given(
        limit=st.integers(1, 5),
        models=st.lists(st.integers(0, 3), max_size=80),
        split=st.integers(0, 80),
    )
    def test_max_events_invariant(
        self, limit: int, models: list[int], split: int
    ) -> None:
        """No model ever holds more than max_events, and the newest survive."""
        store = MemoryStore(max_events=limit)
        batch = [ev(i, model=f"m{m}") for i, m in enumerate(models)]
        store.append(batch[:split])
        store.append(batch[split:])
        events = store.read()[0]
        assert max(Counter(e.model for e in events).values(), default=0) <= limit
        expected = [
            e
            for i, e in enumerate(batch)
            if sum(1 for f in batch[i + 1 :] if f.model == e.model) < limit
        ]
        assert events == expected


# --------------------------------------------------------------------------
# open_store and default_store_url
# --------------------------------------------------------------------------


class TestOpenStore:
    """open_store maps URLs to stores and rejects the rest."""

    @pytest.mark.parametrize("target", [None, "memory://", "MEMORY://"])
    def test_memory(self, target: str | None) -> None:
        """None and memory:// give a MemoryStore."""
        assert isinstance(open_store(target), MemoryStore)

    def test_instance_passes_through(self) -> None:
        """A Store instance is returned as it is."""
        store = MemoryStore()
        assert open_store(store) is store

    def test_sqlite_relative(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """sqlite:///x.db is relative to the working folder; url becomes absolute."""
        monkeypatch.chdir(tmp_path)
        with closing(open_store("sqlite:///sub/x.db")) as store:
            assert isinstance(store, SQLiteStore)
            assert store.path == tmp_path / "sub" / "x.db"
            assert store.url == "sqlite:///" + (tmp_path / "sub" / "x.db").as_posix()
        assert (tmp_path / "sub" / "x.db").is_file()

    def test_sqlite_absolute(self, tmp_path: Path) -> None:
        """sqlite:////abs/x.db (four slashes) is an absolute path."""
        path = tmp_path / "abs.db"
        with closing(open_store(f"sqlite:///{path}")) as store:
            assert isinstance(store, SQLiteStore)
            assert store.path == path

    def test_sqlite_timeout_bounds_the_wait_for_a_lock(self, tmp_path: Path) -> None:
        """?timeout= is how long a write waits for another writer's lock."""
        path = tmp_path / "locked.db"
        with closing(open_store(f"sqlite:///{path}?timeout=0.2")) as store:
            with closing(sqlite3.connect(path, isolation_level=None)) as other:
                other.execute("BEGIN IMMEDIATE")
                started = time.monotonic()
                with pytest.raises(StoreError, match="locked"):
                    store.append([ev(1)])
                waited = time.monotonic() - started
                other.execute("ROLLBACK")
            assert 0.15 < waited < 3  # the default would wait 5 s
            store.append([ev(1)])

    @pytest.mark.parametrize(
        ("target", "match"),
        [
            pytest.param("ftp://x", "expected memory://", id="unknown-scheme"),
            pytest.param("calibration.db", "sqlite:///calibration.db", id="bare-path"),
            pytest.param("memory://x", "expected memory://", id="memory-with-path"),
            pytest.param("sqlite://host/x.db", "sqlite:///relative", id="sqlite-host"),
            pytest.param("sqlite:///", "sqlite:///relative", id="sqlite-no-path"),
            pytest.param("sqlite:///:memory:", "memory://", id="sqlite-memory"),
            pytest.param("sqlite:///x.db?cache=shared", "timeout=", id="sqlite-option"),
            pytest.param("sqlite:///x.db?mode=rwc", "mode=ro", id="sqlite-mode"),
            pytest.param("sqlite:///x.db?timeout=nan", "timeout=", id="timeout-nan"),
            pytest.param("sqlite:///x.db?timeout=inf", "timeout=", id="timeout-inf"),
            pytest.param("sqlite:///x.db?timeout=1e308", "timeout=", id="timeout-huge"),
            pytest.param(
                "sqlite:///x.db?timeout=-1", "timeout=", id="timeout-negative"
            ),
            pytest.param(
                "sqlite:///x.db?timeout=soon", "timeout=", id="sqlite-timeout"
            ),
            pytest.param("", "expected memory://", id="empty"),
        ],
    )
    def test_rejects(
        self, target: str, match: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Anything else raises ConfigError naming the accepted forms."""
        monkeypatch.chdir(tmp_path)
        with pytest.raises(ConfigError, match=match):
            open_store(target)
        assert list(tmp_path.iterdir()) == []

    def test_rejects_other_types(self) -> None:
        """A non-string, non-store target raises ConfigError."""
        with pytest.raises(ConfigError, match="int"):
            open_store(42)  # type: ignore[arg-type]

    def test_error_lists_schemes(self) -> None:
        """The error lists every accepted scheme."""
        with pytest.raises(ConfigError) as info:
            open_store("mongodb://x")
        for scheme in (
            "memory://",
            "sqlite:///",
            "sqlite:////",
            "redis://",
            "rediss://",
            "unix://",
        ):
            assert scheme in str(info.value)

    @pytest.mark.parametrize(
        "target",
        [
            pytest.param("mongodb://me:hunter2@db/x", id="unknown-scheme"),
            pytest.param("sqlite://me:hunter2@host/x.db", id="sqlite-host"),
            pytest.param("sqlite:///x.db?password=hunter2", id="sqlite-option"),
        ],
    )
    def test_rejection_hides_the_password(
        self, target: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The ConfigError for a URL it refuses does not repeat its password."""
        monkeypatch.chdir(tmp_path)
        with pytest.raises(ConfigError) as info:
            open_store(target)
        assert "hunter2" not in str(info.value)
        assert "***" in str(info.value)

    def test_redis_package_missing(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without the redis package, a Redis URL says how to install it."""
        monkeypatch.setitem(sys.modules, "redis", None)
        with pytest.raises(
            StoreError, match=r"pip install 'langchain-tokencal\[redis\]'"
        ):
            open_store("redis://127.0.0.1:6379/0")


class TestDefaultStoreUrl:
    """default_store_url follows TOKENCAL_STORE, then the platform's data folder."""

    def test_env_var_wins(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """TOKENCAL_STORE is returned as it is."""
        monkeypatch.setenv("TOKENCAL_STORE", "redis://cache:6379/2")
        assert default_store_url() == "redis://cache:6379/2"

    def test_default_is_a_sqlite_file(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Without TOKENCAL_STORE it is an absolute sqlite URL that open_store accepts."""
        monkeypatch.delenv("TOKENCAL_STORE", raising=False)
        monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
        monkeypatch.setattr(sys, "platform", "linux")
        url = default_store_url()
        path = tmp_path / "data" / "langchain-tokencal" / "calibration.db"
        assert url == f"sqlite:///{path}"
        assert not path.exists()
        with closing(open_store(url)) as store:
            assert isinstance(store, SQLiteStore)
            assert store.path == path

    @pytest.mark.parametrize(
        ("platform", "env", "expected"),
        [
            pytest.param(
                "linux", {}, "/home/u/.local/share/langchain-tokencal", id="linux"
            ),
            pytest.param(
                "linux",
                {"XDG_DATA_HOME": "/x/data"},
                "/x/data/langchain-tokencal",
                id="xdg",
            ),
            pytest.param(
                "linux",
                {"XDG_DATA_HOME": "rel"},
                "/home/u/.local/share/langchain-tokencal",
                id="xdg-relative",
            ),
            pytest.param(
                "darwin",
                {},
                "/home/u/Library/Application Support/langchain-tokencal",
                id="macos",
            ),
            pytest.param(
                "win32",
                {"LOCALAPPDATA": "/c/Local"},
                "/c/Local/langchain-tokencal",
                id="windows",
            ),
            pytest.param(
                "win32",
                {},
                "/home/u/AppData/Local/langchain-tokencal",
                id="windows-no-env",
            ),
        ],
    )
    def test_data_dir(
        self,
        platform: str,
        env: dict[str, str],
        expected: str,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """Each platform gets its conventional per-user data folder."""
        for name in ("TOKENCAL_STORE", "XDG_DATA_HOME", "LOCALAPPDATA"):
            monkeypatch.delenv(name, raising=False)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("HOME", "/home/u")
        monkeypatch.setattr(sys, "platform", platform)
        assert default_store_url() == f"sqlite:///{expected}/calibration.db"


# --------------------------------------------------------------------------
# redact_url
# --------------------------------------------------------------------------

SECRET = "s3cret-Pa55"  # noqa: S105 - a made-up password to hide


class TestRedactUrl:
    """redact_url hides every password a store URL may carry, and nothing else."""

    @pytest.mark.parametrize(
        ("url", "shown"),
        [
            pytest.param(
                f"redis://user:{SECRET}@host:6379/0",
                "redis://user:***@host:6379/0",
                id="redis-user-password",
            ),
            pytest.param(
                f"redis://:{SECRET}@host:6379/0",
                "redis://:***@host:6379/0",
                id="redis-password-only",
            ),
            pytest.param(
                f"rediss://user:{SECRET}@host:6380/1?ssl_cert_reqs=none",
                "rediss://user:***@host:6380/1?ssl_cert_reqs=none",
                id="rediss-user-password",
            ),
            pytest.param(
                f"redis://host:6379/0?password={SECRET}",
                "redis://host:6379/0?password=***",
                id="redis-query-password",
            ),
            pytest.param(
                f"redis://u:a@b/c@host:6379/0?prefix=p:&password={SECRET}",
                "redis://u:***@host:6379/0?prefix=p:&password=***",
                id="both-and-odd-characters",
            ),
            pytest.param(
                f"unix:///run/redis.sock?db=0&password={SECRET}",
                "unix:///run/redis.sock?db=0&password=***",
                id="unix-query-password",
            ),
            pytest.param(
                f"unix://:{SECRET}@/run/redis.sock?db=0",
                "unix://:***@/run/redis.sock?db=0",
                id="unix-user-info",
            ),
            pytest.param(
                f"sqlite:///calibration.db?password={SECRET}",
                "sqlite:///calibration.db?password=***",
                id="sqlite-query-password",
            ),
            pytest.param(
                f"sqlite://me:{SECRET}@host/x.db",
                "sqlite://me:***@host/x.db",
                id="sqlite-user-info",
            ),
        ],
    )
    def test_hides_passwords(self, url: str, shown: str) -> None:
        """Passwords in the user info and the query become ***."""
        assert redact_url(url) == shown

    @pytest.mark.parametrize(
        "key",
        ["password", "PASSWORD", "passwd", "pwd", "token", "Auth", "secret", "api_key"],
    )
    def test_hides_secret_looking_options(self, key: str) -> None:
        """Any query option named like a credential is hidden, in any case."""
        url = f"redis://host:6379/0?db=0&{key}={SECRET}&prefix=app:"
        assert redact_url(url) == f"redis://host:6379/0?db=0&{key}=***&prefix=app:"

    @pytest.mark.parametrize(
        "url",
        [
            "memory://",
            "redis://127.0.0.1:6379/0?prefix=test-1:",
            "redis://alice@host:6379/0",
            "unix:///run/redis.sock?db=0",
            "sqlite:////home/me/a@b:c/calibration.db",
            "sqlite:///calibration.db?timeout=1.5",
            "calibration.db",
        ],
    )
    def test_keeps_urls_without_secrets(self, url: str) -> None:
        """A URL with no password comes back exactly as written."""
        assert redact_url(url) == url
