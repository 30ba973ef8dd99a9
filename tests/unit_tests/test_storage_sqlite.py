"""SQLiteStore on real files: the contract, processes, crashes, repairs, migrations."""

from __future__ import annotations

import itertools
import logging
import os
import random
import signal
import sqlite3
import sys
from contextlib import closing
from typing import TYPE_CHECKING

import pytest

from langchain_tokencal import TokenCalibrationHandler
from langchain_tokencal.events import encode_event
from langchain_tokencal.storage import (
    SQLiteStore,
    Store,
    StoreError,
    _sqlite_file,
    open_store,
)
from langchain_tokencal.storage import _sqlite as _sqlite_store
from tests.unit_tests.test_storage import (
    CANARY,
    CANARY_EVENTS,
    STORAGE_LOGGER,
    SharedStoreContract,
    check_writers,
    ev,
    run_writers,
    start_writer,
    storage_warnings,
)

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

SIDE_FILES = ("-wal", "-shm", "-journal")


def file_bytes(path: Path) -> bytes:
    """The bytes of a database file and of the files SQLite keeps beside it."""
    files = [path, *(path.with_name(path.name + s) for s in SIDE_FILES)]
    return b"".join(f.read_bytes() for f in files if f.exists())


def raw(path: Path) -> sqlite3.Connection:
    """A plain sqlite3 connection, to look at a file behind the store's back."""
    return sqlite3.connect(path, isolation_level=None)


def moved_aside(path: Path) -> list[Path]:
    """The ``<name>.corrupt-*`` files beside ``path`` (main files only)."""
    return sorted(
        p
        for p in path.parent.glob(f"{path.name}.corrupt-*")
        if not p.name.endswith(SIDE_FILES)
    )


@pytest.fixture
def path(tmp_path: Path) -> Path:
    """A database file that does not exist yet."""
    return tmp_path / "x.db"


@pytest.fixture
def seeded(path: Path) -> Path:
    """A database file holding one event and one model's usage."""
    with closing(SQLiteStore(path)) as store:
        store.append([ev(1)])
        store.add_usage("gpt-4o", [1, 2, 3, 0, 0, 0, 0, 0])
    return path


class TestSQLiteStore(SharedStoreContract):
    """A SQLite file meets the contract."""

    scheme = "sqlite:///"

    @pytest.fixture
    def target(self, tmp_path: Path) -> str:
        """A file that does not exist yet."""
        return f"sqlite:///{tmp_path / 'store.db'}"

    @pytest.fixture
    def fresh(self, tmp_path: Path) -> Callable[[], Store]:
        """New files in the test's folder."""
        names = itertools.count()
        return lambda: SQLiteStore(tmp_path / f"fresh-{next(names)}.db")

    @pytest.fixture
    def dump(self, tmp_path: Path) -> Callable[[Store], bytes]:
        """The database file and its WAL."""
        return lambda store: file_bytes(tmp_path / "store.db")

    @pytest.fixture
    def corrupt(self, tmp_path: Path) -> Callable[[Store], None]:
        """Rows whose line is not an event, inserted with plain sqlite3."""

        def insert(store: Store) -> None:
            with closing(raw(tmp_path / "store.db")) as conn:
                conn.executemany(
                    "INSERT INTO tokencal_events (model, line) VALUES ('m', ?)",
                    [("not json",), ("[1, 2]",)],
                )

        return insert


class TestSQLiteFile:
    """How the file is created, configured and protected."""

    def test_wal_and_version(self, seeded: Path) -> None:
        """The file is in WAL mode at the latest schema version."""
        with closing(raw(seeded)) as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
            assert conn.execute("PRAGMA user_version").fetchone() == (
                max(_sqlite_store.MIGRATIONS),
            )

    @pytest.mark.skipif(sys.platform == "win32", reason="POSIX file modes")
    def test_private_mode(self, path: Path) -> None:
        """The database and its WAL are readable by the owner only."""
        with closing(SQLiteStore(path)) as store:
            store.append([ev(1)])
            for file in (path, path.with_name(path.name + "-wal")):
                assert file.stat().st_mode & 0o777 == 0o600

    def test_creates_folders(self, tmp_path: Path) -> None:
        """Missing parent folders are created."""
        path = tmp_path / "a" / "b" / "x.db"
        SQLiteStore(path).close()
        assert path.is_file()

    def test_parent_is_a_file(self, tmp_path: Path) -> None:
        """A folder that cannot be created fails loudly with the path and reason."""
        (tmp_path / "file").write_text("x")
        path = tmp_path / "file" / "x.db"
        with pytest.raises(StoreError) as info:
            SQLiteStore(path)
        assert str(path) in str(info.value)
        assert os.strerror(20) in str(info.value)  # ENOTDIR

    def test_path_is_a_folder(self, tmp_path: Path) -> None:
        """A path naming a folder fails loudly with the reason."""
        with pytest.raises(StoreError, match=os.strerror(21)):  # EISDIR
            SQLiteStore(tmp_path)

    def test_holds_only_events_and_usage(self, path: Path) -> None:
        """The file holds our tables only, with each event's encoded line."""
        with closing(SQLiteStore(path)) as store:
            store.append(CANARY_EVENTS)
            store.add_usage("gpt-4o", [120, 30, 150, 0, 0, 0, 0, 0])
        assert CANARY.encode() not in path.read_bytes()  # after the checkpoint too
        with closing(raw(path)) as conn:
            tables = {n for (n,) in conn.execute("SELECT name FROM sqlite_master")}
            assert tables == {
                "tokencal_events",
                "tokencal_events_by_model",
                "tokencal_events_by_uid",
                "tokencal_origins",
                "tokencal_usage",
                "tokencal_snapshots",
                "tokencal_marks",
                "tokencal_leases",
                "sqlite_sequence",
            }
            rows = conn.execute("SELECT model, line FROM tokencal_events").fetchall()
            assert rows == [(e.model, encode_event(e)) for e in CANARY_EVENTS]


class TestSQLiteRepair:
    """Corrupt files are moved aside; foreign and newer ones are refused."""

    def test_garbage_file(self, path: Path, caplog: pytest.LogCaptureFixture) -> None:
        """A file that is not a database is moved aside with one warning."""
        garbage = b"this is not a database at all" * 100
        path.write_bytes(garbage)
        with caplog.at_level(logging.WARNING, logger=STORAGE_LOGGER):
            store = SQLiteStore(path)
        with closing(store):
            store.append([ev(1)])
            assert store.read()[0] == [ev(1)]
        (aside,) = moved_aside(path)
        assert aside.read_bytes() == garbage
        (warning,) = storage_warnings(caplog)
        assert str(path) in warning
        assert str(aside) in warning

    def test_foreign_schema(self, path: Path) -> None:
        """A database with someone else's tables is refused and left as it was."""
        with closing(raw(path)) as conn:
            conn.execute("CREATE TABLE users (name TEXT)")
            conn.execute("INSERT INTO users VALUES ('ada')")
        before = path.read_bytes()
        with pytest.raises(StoreError, match=r"not langchain-tokencal's \(users\)"):
            SQLiteStore(path)
        assert moved_aside(path) == []
        assert path.read_bytes() == before
        with closing(raw(path)) as conn:
            assert conn.execute("SELECT name FROM users").fetchall() == [("ada",)]
            tables = {n for (n,) in conn.execute("SELECT name FROM sqlite_master")}
        assert tables == {"users"}

    def test_foreign_schema_through_a_handler(self, path: Path) -> None:
        """A handler given another program's database raises, and renames nothing."""
        with closing(raw(path)) as conn:
            conn.execute("CREATE TABLE users (name TEXT)")
        with pytest.raises(StoreError, match="left untouched"):
            TokenCalibrationHandler(store=f"sqlite:///{path}")
        assert moved_aside(path) == []

    def test_versioned_but_empty(self, path: Path) -> None:
        """A database with a schema version but none of our tables is refused."""
        with closing(raw(path)) as conn:
            conn.execute("PRAGMA user_version = 1")
        with pytest.raises(StoreError, match="no langchain-tokencal tables"):
            SQLiteStore(path)
        assert moved_aside(path) == []

    def test_two_repairs_keep_both(self, path: Path) -> None:
        """A second corrupt file in the same second gets its own name."""
        for content in (b"first garbage" * 50, b"second garbage" * 50):
            path.write_bytes(content)
            SQLiteStore(path).close()
        assert {p.read_bytes()[:6] for p in moved_aside(path)} == {b"first ", b"second"}

    def test_repair_by_another_process_is_kept(
        self, tmp_path: Path, path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A file another process put in place after our check is not moved aside."""
        path.write_bytes(b"garbage" * 100)
        real_check = _sqlite_file._check

        def racing(conn: sqlite3.Connection, checked: Path) -> str | None:
            problem = real_check(conn, checked)
            if problem is not None:
                # The other process wins the race: it moves the bad file away
                # and starts a fresh store before we act on our verdict.
                checked.replace(tmp_path / "elsewhere")
                with closing(SQLiteStore(checked)) as other:
                    other.append([ev(7)])
            return problem

        monkeypatch.setattr(_sqlite_file, "_check", racing)
        with closing(SQLiteStore(path)) as store:
            assert store.read()[0] == [ev(7)]
        assert moved_aside(path) == []

    def test_gives_up_on_a_file_that_stays_bad(
        self, path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A file that is bad after every repair raises StoreError instead of looping."""
        monkeypatch.setattr(_sqlite_file, "_check", lambda conn, path: "is cursed")
        with pytest.raises(StoreError, match="is cursed"):
            SQLiteStore(path)
        assert moved_aside(path)  # it tried a repair, and then stopped

    def test_newer_schema_is_refused(self, seeded: Path) -> None:
        """A file from a newer version raises StoreError and is left untouched."""
        path = seeded
        with closing(raw(path)) as conn:
            conn.execute("PRAGMA user_version = 99")
        before = path.read_bytes()
        with pytest.raises(StoreError, match="upgrade langchain-tokencal"):
            SQLiteStore(path)
        assert path.read_bytes() == before
        assert moved_aside(path) == []

    def test_empty_file_is_migrated(
        self, path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        """An empty file (version 0) is brought to the latest version silently."""
        path.touch()
        with (
            caplog.at_level(logging.WARNING, logger=STORAGE_LOGGER),
            closing(SQLiteStore(path)) as store,
        ):
            store.append([ev(1)])
        assert storage_warnings(caplog) == []
        with closing(raw(path)) as conn:
            assert conn.execute("PRAGMA user_version").fetchone() == (
                max(_sqlite_store.MIGRATIONS),
            )

    def test_migration_from_older_schema(
        self, seeded: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A file at an older version gets the newer migrations once, data kept."""
        path = seeded
        calls: list[int] = []

        def to_next(conn: sqlite3.Connection) -> None:
            calls.append(1)
            conn.execute("CREATE TABLE tokencal_notes (note TEXT)")
            conn.execute("UPDATE tokencal_usage SET output_audio = 5")

        latest = max(_sqlite_store.MIGRATIONS)
        monkeypatch.setitem(_sqlite_store.MIGRATIONS, latest + 1, to_next)
        for _ in range(2):
            with closing(SQLiteStore(path)) as store:
                assert store.read()[0] == [ev(1)]
                assert store.usage() == {"gpt-4o": [1, 2, 3, 0, 0, 0, 0, 5]}
        assert calls == [1]
        with closing(raw(path)) as conn:
            assert conn.execute("PRAGMA user_version").fetchone() == (latest + 1,)

    def test_failed_migration_rolls_back(
        self, seeded: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A migration that fails leaves the file at its old version, data intact."""
        path = seeded

        def broken(conn: sqlite3.Connection) -> None:
            conn.execute("CREATE TABLE tokencal_half (x)")
            conn.execute("SELECT * FROM no_such_table")

        latest = max(_sqlite_store.MIGRATIONS)
        monkeypatch.setitem(_sqlite_store.MIGRATIONS, latest + 1, broken)
        with pytest.raises(StoreError, match="no_such_table"):
            SQLiteStore(path)
        monkeypatch.delitem(_sqlite_store.MIGRATIONS, latest + 1)
        with closing(raw(path)) as conn:
            assert conn.execute("PRAGMA user_version").fetchone() == (latest,)
            names = {n for (n,) in conn.execute("SELECT name FROM sqlite_master")}
            assert "tokencal_half" not in names
        with closing(SQLiteStore(path)) as store:
            assert store.read()[0] == [ev(1)]


class TestSQLiteProcesses:
    """Several OS processes share one file; a killed writer loses nothing committed."""

    def test_concurrent_writers(self, tmp_path: Path) -> None:
        """Four processes appending 500 events each to a new file lose and repeat nothing."""
        url = f"sqlite:///{tmp_path / 'shared.db'}"
        seen, everything, usage = run_writers(url)
        assert seen == everything
        check_writers(everything, usage)

    def test_cursor_across_processes(self, tmp_path: Path) -> None:
        """A cursor taken here returns exactly what another process appended later."""
        url = f"sqlite:///{tmp_path / 'x.db'}"
        with closing(open_store(url)) as store:
            store.append([ev(1)])
            _, cursor = store.read()
            proc = start_writer(url, "other", 20, 7)
            out, _ = proc.communicate("go\n")
            assert proc.returncode == 0
            assert out.split() == ["7", "14", "20"]
            events, _ = store.read(after=cursor)
            assert [(e.origin, e.values[0]) for e in events] == [
                ("other", i) for i in range(20)
            ]

    @pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
    def test_sigkill_mid_write(self, tmp_path: Path) -> None:
        """After writers die by SIGKILL mid-transaction, the file opens and works."""
        url = f"sqlite:///{tmp_path / 'x.db'}"
        rng = random.Random(20251127)
        batch = 50
        committed = 0
        for round_ in range(3):
            proc = start_writer(url, f"k{round_}", 10**7, batch)
            assert proc.stdin is not None
            assert proc.stdout is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
            for _ in range(rng.randint(3, 40)):
                reported = int(proc.stdout.readline())
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            proc.stdout.close()
            proc.stdin.close()
            with closing(SQLiteStore(tmp_path / "x.db")) as store:
                events = [e for e in store.read()[0] if e.origin == f"k{round_}"]
                assert len(events) >= reported
                assert len(events) % batch == 0  # whole transactions only
                assert [e.values[0] for e in events] == list(range(len(events)))
                calls = sum(store.usage().get(f"model-{k}", [0])[0] for k in range(3))
                assert calls - committed in {
                    len(events) // batch - 1,
                    len(events) // batch,
                }
                committed = calls
                store.append([ev(round_)])
                assert store.read()[0][-1] == ev(round_)
        with closing(raw(tmp_path / "x.db")) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
