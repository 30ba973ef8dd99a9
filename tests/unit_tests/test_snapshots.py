"""Snapshots and compaction: start-up and store size bounded, nothing lost.

Against a real SQLite file and a real ``redis-server``: a store fed through a
handler that writes snapshots holds one snapshot and the events after the
one before it; a new handler started from snapshot + tail knows exactly what
a handler replaying the whole log knows; a reader that fell behind the
compaction starts again from the snapshot; two writers never overwrite each
other (lease, compare and set); a damaged snapshot is skipped, never fatal.
"""

from __future__ import annotations

import json
import random
import sqlite3
from contextlib import closing
from typing import TYPE_CHECKING, Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

from langchain_tokencal import TokenCalibrationHandler, create_counter
from langchain_tokencal.errors import ConfigError
from langchain_tokencal.events import LearnEvent
from langchain_tokencal.storage import (
    CursorExpiredError,
    RedisStore,
    Snapshot,
    SQLiteStore,
    Store,
    supports_snapshots,
)
from tests.unit_tests.test_storage_redis import redis_server  # noqa: F401 - a fixture

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from tests.unit_tests.test_storage_redis import RedisServer

pytestmark = pytest.mark.allow_hosts(["127.0.0.1"])

MODEL = "claude-sonnet-4-5"
SYSTEM = SystemMessage("You are a careful assistant for a shipping company. " * 6)
PROBES = (
    [SYSTEM, HumanMessage("Where is container 7 today?")],
    [SYSTEM, HumanMessage("q3 " + "word " * 12)],
    [HumanMessage("a prompt with no system message at all")],
    [
        SYSTEM,
        HumanMessage("hi"),
        AIMessage("hello, how can I help?"),
        HumanMessage("ok"),
    ],
)


def learned_events(reports: int, seed: int = 0) -> list[LearnEvent]:
    """The events a handler learns from ``reports`` calls (as another process)."""
    rng = random.Random(seed)
    counter = create_counter(MODEL, "anthropic")
    events: list[LearnEvent] = []
    counter.listener = events.extend
    counter.origin = "elsewhere"
    history: list[Any] = [SYSTEM]
    for i in range(reports):
        if rng.random() < 0.3:
            history = [SYSTEM]
        history = [*history, HumanMessage(f"q{i} " + "word " * rng.randint(1, 40))]
        truth = int(len(str(history)) / 3.7) + rng.randint(0, 4)
        counter.observe(history, truth)
        history = [*history, AIMessage("noted " * rng.randint(1, 9))]
    counter.flush()
    return [
        LearnEvent(e.model, e.kind, e.values, e.origin, e.at, seq=n)
        for n, e in enumerate(events, 1)
    ]


def knowledge(handler: TokenCalibrationHandler) -> list[Any]:
    """What a handler's counts and statistics say about the probes."""
    seen: list[Any] = []
    for probe in PROBES:
        est = handler.estimate(probe, model=MODEL)
        seen.append((est.tokens, est.low, est.high, est.source, est.confidence))
    stats = handler.stats()[MODEL]
    seen.append((stats.observations, stats.rejected))
    return seen


@pytest.fixture(params=["sqlite", "redis"])
def make_store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Callable[[str], tuple[str, Store]]:
    """Opens a fresh store (a URL and an open store) of each kind by name."""

    def make(name: str) -> tuple[str, Store]:
        if request.param == "sqlite":
            path = tmp_path / f"{name}.db"
            return f"sqlite:///{path}", SQLiteStore(path)
        server: RedisServer = request.getfixturevalue("redis_server")
        url = server.url(f"{name}-{random.getrandbits(48):x}:")
        return url, RedisStore(url)

    return make


def feed(store: Store, events: list[LearnEvent]) -> None:
    """Append events as another process would."""
    for start in range(0, len(events), 500):
        store.append(events[start : start + 500])


def writer(url: str, every: int) -> TokenCalibrationHandler:
    """A handler that writes snapshots every ``every`` events (syncs by hand)."""
    return TokenCalibrationHandler(store=url, snapshot_every=every, sync_interval=3600)


class TestSnapshotPlusTail:
    """A new handler from snapshot + tail knows what the full replay knows."""

    def test_equals_full_replay(self, make_store: Callable[..., Any]) -> None:
        """Two snapshots, a tail after them: same counts, intervals, statistics."""
        events = learned_events(240)
        thirds = len(events) // 3
        url, store = make_store("snap")
        full_url, full = make_store("full")
        with closing(store), closing(full):
            feed(full, events)
            w = writer(url, every=thirds // 2)
            try:
                for part in (events[:thirds], events[thirds : 2 * thirds]):
                    feed(store, part)
                    assert w._sync.sync()
                feed(store, events[2 * thirds :])
                assert w._sync.sync()
                assert w._sync.snapshots_written >= 2
                assert w._sync.events_pruned > 0
            finally:
                w.close()
            snapshot = store.read_snapshot()
            assert snapshot is not None
            left, _ = store.read()
            assert len(left) < len(events)  # compacted
        restored = writer(url, every=0)
        replayed = writer(full_url, every=0)
        try:
            assert restored._sync.events_pruned == 0
            assert knowledge(restored) == knowledge(replayed)
            assert (
                restored._registry.counters[MODEL].export()
                == replayed._registry.counters[MODEL].export()
            )
        finally:
            restored.close()
            replayed.close()

    def test_store_stays_bounded(self, make_store: Callable[..., Any]) -> None:
        """Fed 5x the interval, the store holds about two intervals of events."""
        events = learned_events(300, seed=1)
        every = len(events) // 10
        url, store = make_store("bounded")
        with closing(store):
            w = writer(url, every=every)
            try:
                for start in range(0, len(events), every // 2):
                    feed(store, events[start : start + every // 2])
                    assert w._sync.sync()
            finally:
                w.close()
            left, _ = store.read()
            assert len(left) <= 3 * every
            assert w._sync.events_pruned + len(left) == len(events)


class TestFallingBehind:
    """A reader further behind than one snapshot starts again from it."""

    def test_expired_cursor_reloads(
        self, make_store: Callable[..., Any], caplog: pytest.LogCaptureFixture
    ) -> None:
        """A cursor behind the pruned events raises; the handler reloads."""
        events = learned_events(200, seed=2)
        quarter = len(events) // 4
        url, store = make_store("behind")
        with closing(store):
            feed(store, events[:quarter])
            reader = writer(url, every=0)
            stale = reader._sync._cursor
            w = writer(url, every=quarter // 2)
            try:
                for i in (1, 2, 3):
                    feed(store, events[i * quarter : (i + 1) * quarter])
                    assert w._sync.sync()
                with pytest.raises(CursorExpiredError):
                    store.read(stale)
                assert reader._sync.sync()
                assert "fell behind the compaction" in caplog.text
                fresh = writer(url, every=0)
                assert knowledge(reader) == knowledge(fresh)
                fresh.close()
            finally:
                w.close()
                reader.close()


class TestWriters:
    """One writer at a time; a late writer never overwrites a newer snapshot."""

    def test_lease_is_exclusive(self, make_store: Callable[..., Any]) -> None:
        """A held lease is refused to others and renewed for its owner."""
        _, store = make_store("lease")
        with closing(store):
            assert supports_snapshots(store)
            assert store.take_lease("snapshot", "a", 60)  # type: ignore[attr-defined]
            assert not store.take_lease("snapshot", "b", 60)  # type: ignore[attr-defined]
            assert store.take_lease("snapshot", "a", 60)  # type: ignore[attr-defined]

    def test_expired_lease_passes_on(self, make_store: Callable[..., Any]) -> None:
        """A lease nobody renewed is taken by the next process."""
        _, store = make_store("expiry")
        with closing(store):
            assert store.take_lease("snapshot", "a", 0.001)  # type: ignore[attr-defined]
            import time  # noqa: PLC0415

            time.sleep(0.05)
            assert store.take_lease("snapshot", "b", 60)  # type: ignore[attr-defined]

    def test_applied_marks(self, make_store: Callable[..., Any]) -> None:
        """A store says how far it applied an origin; unknown origins are 0."""
        _, store = make_store("marks")
        with closing(store):
            events = learned_events(5, seed=7)
            feed(store, events)
            assert store.applied("elsewhere") == max(e.seq for e in events)  # type: ignore[attr-defined]
            assert store.applied("nobody") == 0  # type: ignore[attr-defined]

    def test_compare_and_set(self, make_store: Callable[..., Any]) -> None:
        """A snapshot built on an old base is refused; nothing changes."""
        _, store = make_store("cas")
        with closing(store):
            feed(store, learned_events(20, seed=3))
            _, cursor = store.read()
            first = Snapshot(cursor, {MODEL: "{}"})
            assert store.write_snapshot(first, "") == 0  # type: ignore[attr-defined]
            assert store.write_snapshot(first, "") is None  # type: ignore[attr-defined]
            snapshot = store.read_snapshot()  # type: ignore[attr-defined]
            assert snapshot == first


class TestDamagedSnapshots:
    """A bad snapshot is skipped with a warning; the tail is still learned."""

    @pytest.mark.parametrize(
        "state",
        [
            "not json",
            "[" * 5000 + "]" * 5000,
            json.dumps({"provider": "anthropic", "state": {"v": 99}}),
            json.dumps({"provider": 5, "state": {}}),
            json.dumps({"provider": "anthropic", "state": {"v": 1, "kind": "x"}}),
        ],
    )
    def test_bad_state_is_skipped(
        self,
        make_store: Callable[..., Any],
        state: str,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """The handler starts, warns, and learns the events after the snapshot."""
        events = learned_events(30, seed=4)
        url, store = make_store("damaged")
        with closing(store):
            feed(store, events[:10])
            _, cursor = store.read()
            assert store.write_snapshot(Snapshot(cursor, {MODEL: state}), "") == 0  # type: ignore[attr-defined]
            feed(store, events[10:])
        handler = writer(url, every=0)
        try:
            assert "unreadable model state" in caplog.text
            assert handler.stats()[MODEL].observations > 0
        finally:
            handler.close()

    def test_values_out_of_range_are_refused(self) -> None:
        """A snapshot with a negative count or a NaN restores nothing."""
        counter = create_counter(MODEL)
        counter.observe([HumanMessage("hello there")], 30)
        good = counter.export()
        for path, value in (
            (("ledger", "prompts"), [1, -5]),
            (("calibrator", "ata"), [float("nan")]),
            (("errors",), [1e300, 0.0]),
            (("rejected",), {"x": -1}),
            (("calibrator",), 5.0),
            (("ledger",), [1, 2]),
            (("calibrator", "active"), [99]),
        ):
            bad = json.loads(json.dumps(good))
            target = bad
            for key in path[:-1]:
                target = target[key]
            target[path[-1]] = value
            fresh = create_counter(MODEL)
            before = fresh.export()
            with pytest.raises(ValueError, match=r"."):
                fresh.restore(bad)
            assert fresh.export() == before


class TestSettings:
    """snapshot_every is validated; SQLite files of version 2 migrate."""

    @pytest.mark.parametrize("value", [-1, 1.5, "10", True])
    def test_bad_interval(self, value: object) -> None:
        """Not a count of events: ConfigError naming the setting."""
        with pytest.raises(ConfigError, match="snapshot_every"):
            TokenCalibrationHandler(snapshot_every=value)

    def test_version_2_file_is_migrated(self, tmp_path: Path) -> None:
        """A file without the snapshot tables gets them, keeping its events."""
        path = tmp_path / "old.db"
        with closing(SQLiteStore(path)) as store:
            feed(store, learned_events(10, seed=5))
            kept = len(store.read()[0])
        with closing(sqlite3.connect(path)) as conn:
            for table in ("tokencal_snapshots", "tokencal_marks", "tokencal_leases"):
                conn.execute(f"DROP TABLE {table}")
            conn.execute("PRAGMA user_version = 2")
            conn.commit()
        with closing(SQLiteStore(path, read_only=True)) as store:
            assert store.read_snapshot() is None
            assert len(store.read("1")[0]) == kept - 1
        with closing(SQLiteStore(path)) as store:
            assert store.read_snapshot() is None
            assert len(store.read()[0]) == kept


class TestFastFill:
    """Learning as fast as one thread can loses no report, snapshots or not."""

    @pytest.mark.parametrize("every", [0, 1000])
    def test_every_report_reaches_the_store(self, tmp_path: Path, every: int) -> None:
        """5,000 reports in a tight loop: none dropped, all loaded by a new handler."""
        url = f"sqlite:///{tmp_path / 'fill.db'}"
        handler = TokenCalibrationHandler(store=url, snapshot_every=every)
        for i in range(5000):
            prompt = [SYSTEM, HumanMessage(f"q {i} " + "w " * (i % 13))]
            handler.observe(
                prompt, {"input_tokens": 90 + i % 13, "output_tokens": 3}, MODEL
            )
        handler.close()
        assert handler._sync.dropped == 0
        fresh = TokenCalibrationHandler(store=url, snapshot_every=0)
        try:
            assert fresh.stats()[MODEL].observations == 5000
        finally:
            fresh.close()


class TestManyModels:
    """Snapshots and restores respect max_models and keep every model."""

    def test_snapshot_of_parked_models(self, make_store: Callable[..., Any]) -> None:
        """A writer with max_models=3 snapshots all 8 models; a reader restores them."""
        url, store = make_store("many")
        events: list[LearnEvent] = []
        for m in range(8):
            counter = create_counter(f"model-{m}", "anthropic")
            counter.listener = events.extend
            counter.origin = "elsewhere"
            for i in range(6):
                prompt = [SYSTEM, HumanMessage(f"m{m} q{i} " + "w " * i)]
                counter.observe(prompt, 90 + 5 * i + m)
            counter.flush()
        events = [replace_seq(e, n) for n, e in enumerate(events, 1)]
        with closing(store):
            feed(store, events)
            w = TokenCalibrationHandler(
                store=url, snapshot_every=10, sync_interval=3600, max_models=3
            )
            try:
                w._sync._since = 10**6  # as if many events had come
                assert w._sync.sync()
                assert w._sync.snapshots_written == 1
            finally:
                w.close()
            snapshot = store.read_snapshot()  # type: ignore[attr-defined]
            assert snapshot is not None
            assert len(snapshot.states) == 8
        reader = TokenCalibrationHandler(store=url, snapshot_every=0, max_models=3)
        full = TokenCalibrationHandler(snapshot_every=0, max_models=100)
        full._sync.ingest(events, publish=False)
        try:
            assert len(reader._registry.counters) == 3
            assert len(reader._registry.parking) == 5
            for m in range(8):
                probe = [SYSTEM, HumanMessage(f"m{m} q2 w w ")]
                a = reader.estimate(probe, model=f"model-{m}")
                b = full.estimate(probe, model=f"model-{m}")
                assert (a.tokens, a.low, a.high, a.source) == (
                    b.tokens,
                    b.low,
                    b.high,
                    b.source,
                )
        finally:
            reader.close()
            full.close()


def replace_seq(event: LearnEvent, seq: int) -> LearnEvent:
    """``event`` with sequence number ``seq``."""
    return LearnEvent(
        event.model, event.kind, event.values, event.origin, event.at, seq
    )


class TestSaveAfterSnapshot:
    """save() from a handler started on a snapshot says what the file lacks."""

    def test_warns(self, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
        """The warning names the file and the remedy: copy the store."""
        url = f"sqlite:///{tmp_path / 's.db'}"
        with closing(SQLiteStore(tmp_path / "s.db")) as store:
            feed(store, learned_events(20, seed=6))
            w = writer(url, every=5)
            w._sync._since = 10**6
            assert w._sync.sync()
            w.close()
        handler = writer(url, every=0)
        try:
            handler.save(tmp_path / "out.jsonl")
        finally:
            handler.close()
        assert "copy the store itself" in caplog.text


class TestCraftedStatistics:
    """Finite statistics whose solution is not are refused whole."""

    def test_unsolvable_regression(self) -> None:
        """Tiny normal equations with a huge right side: ValueError, unchanged."""
        counter = create_counter(MODEL)
        for i in range(5):
            counter.observe([HumanMessage("hello there " * (i + 1))], 30 + 9 * i)
        good = counter.export()
        bad = json.loads(json.dumps(good))
        cal = bad["calibrator"]
        cal["ata"] = [1e-300] * len(cal["ata"])
        cal["atb"] = [1e300] * len(cal["atb"])
        cal["scale"] = 1.0
        fresh = create_counter(MODEL)
        before = fresh.export()
        with pytest.raises(ValueError, match="not finite or absurdly large"):
            fresh.restore(bad)
        assert fresh.export() == before
        est = fresh.estimate([HumanMessage("hello there")])
        assert est.tokens >= 0
