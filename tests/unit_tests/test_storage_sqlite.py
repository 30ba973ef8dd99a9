"""SQLiteStore on real files: the contract, processes, crashes, repairs, migrations."""

from __future__ import annotations

import hashlib
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

from langchain_tokencal.events import LearnEvent, encode_event
from langchain_tokencal.storage import SQLiteStore, Store, StoreError, open_store
from langchain_tokencal.storage import _sqlite as _sqlite_store
from tests.unit_tests.test_storage import (
    StoreContract,
    check_writers,
    ev,
    run_writers,
    start_writer,
)

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

STORAGE_LOGGER = "langchain_tokencal.storage"


def raw(path: Path) -> sqlite3.Connection:
    """A plain sqlite3 connection, to look at a file behind the store's back."""
    return sqlite3.connect(path, isolation_level=None)


def moved_aside(path: Path) -> list[Path]:
    """The ``<name>.corrupt-*`` files beside ``path`` (main files only)."""
    return sorted(
        p
        for p in path.parent.glob(f"{path.name}.corrupt-*")
        if not p.name.endswith(("-wal", "-shm", "-journal"))
    )


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The warning messages the storage logger emitted."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == STORAGE_LOGGER and r.levelno == logging.WARNING
    ]


class TestSQLiteStore(StoreContract):
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

    def test_corrupt_rows_are_skipped(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Undecodable rows are skipped with one warning each; the cursor passes them."""
        path = tmp_path / "rows.db"
        with closing(SQLiteStore(path)) as store:
            store.append([ev(1)])
            with closing(raw(path)) as conn:
                conn.execute(
                    "INSERT INTO tokencal_events (model, line) VALUES ('m', 'not json')"
                )
                conn.execute(
                    "INSERT INTO tokencal_events (model, line) VALUES ('m', '[1, 2]')"
                )
            store.append([ev(2)])
            with caplog.at_level(logging.WARNING, logger=STORAGE_LOGGER):
                events, cursor = store.read()
            assert events == [ev(1), ev(2)]
            assert len(warnings_of(caplog)) == 2
            assert cursor == "4"


class TestSQLiteFile:
    """How the file is created, configured and protected."""

    def test_wal_and_version(self, tmp_path: Path) -> None:
        """The file is in WAL mode at the latest schema version."""
        path = tmp_path / "x.db"
        SQLiteStore(path).close()
        with closing(raw(path)) as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
            assert conn.execute("PRAGMA user_version").fetchone() == (
                max(_sqlite_store.MIGRATIONS),
            )

    @pytest.mark.skipif(sys.platform == "win32", reason="POSIX file modes")
    def test_private_mode(self, tmp_path: Path) -> None:
        """The database and its WAL are readable by the owner only."""
        path = tmp_path / "x.db"
        with closing(SQLiteStore(path)) as store:
            store.append([ev(1)])
            for file in (path, tmp_path / "x.db-wal"):
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

    def test_holds_only_events_and_usage(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The file holds the encoded events and usage sums, nothing else."""
        canary = "CANARY-e3b0c442 the user's secret prompt"
        monkeypatch.setenv("TOKENCAL_CANARY", canary)
        digest = hashlib.sha256(canary.encode()).hexdigest()[:16]
        events = [
            LearnEvent(
                "gpt-4o", "prompt", ("tools-0", digest, digest, 99, 120), "me", 1.0
            ),
            LearnEvent("gpt-4o", "message", (digest, 12.0), "me", 1.0),
        ]
        path = tmp_path / "x.db"
        with closing(SQLiteStore(path)) as store:
            store.append(events)
            store.add_usage("gpt-4o", [120, 30, 150, 0, 0, 0, 0, 0])
            for file in (path, tmp_path / "x.db-wal"):
                assert canary.encode() not in file.read_bytes()
        data = path.read_bytes()
        assert canary.encode() not in data
        assert digest.encode() in data  # the look is not blind
        with closing(raw(path)) as conn:
            tables = {n for (n,) in conn.execute("SELECT name FROM sqlite_master")}
            assert tables == {
                "tokencal_events",
                "tokencal_events_by_model",
                "tokencal_usage",
                "sqlite_sequence",
            }
            rows = conn.execute("SELECT model, line FROM tokencal_events").fetchall()
            assert rows == [(e.model, encode_event(e)) for e in events]


class TestSQLiteRepair:
    """Corrupt and foreign files are moved aside; newer ones are refused."""

    def test_garbage_file(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A file that is not a database is moved aside with one warning."""
        path = tmp_path / "x.db"
        garbage = b"this is not a database at all" * 100
        path.write_bytes(garbage)
        with caplog.at_level(logging.WARNING, logger=STORAGE_LOGGER):
            store = SQLiteStore(path)
        with closing(store):
            store.append([ev(1)])
            assert store.read()[0] == [ev(1)]
        (aside,) = moved_aside(path)
        assert aside.read_bytes() == garbage
        (warning,) = warnings_of(caplog)
        assert str(path) in warning
        assert str(aside) in warning

    def test_foreign_schema(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A database with someone else's tables is moved aside intact."""
        path = tmp_path / "x.db"
        with closing(raw(path)) as conn:
            conn.execute("CREATE TABLE users (name TEXT)")
            conn.execute("INSERT INTO users VALUES ('ada')")
        with caplog.at_level(logging.WARNING, logger=STORAGE_LOGGER):
            SQLiteStore(path).close()
        (aside,) = moved_aside(path)
        with closing(raw(aside)) as conn:
            assert conn.execute("SELECT name FROM users").fetchall() == [("ada",)]
        (warning,) = warnings_of(caplog)
        assert "users" in warning

    def test_versioned_but_empty(self, tmp_path: Path) -> None:
        """A database with a schema version but none of our tables is moved aside."""
        path = tmp_path / "x.db"
        with closing(raw(path)) as conn:
            conn.execute("PRAGMA user_version = 1")
        SQLiteStore(path).close()
        assert len(moved_aside(path)) == 1

    def test_two_repairs_keep_both(self, tmp_path: Path) -> None:
        """A second corrupt file in the same second gets its own name."""
        path = tmp_path / "x.db"
        for content in (b"first garbage" * 50, b"second garbage" * 50):
            path.write_bytes(content)
            SQLiteStore(path).close()
        assert {p.read_bytes()[:6] for p in moved_aside(path)} == {b"first ", b"second"}

    def test_repair_by_another_process_is_kept(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A file another process put in place after our check is not moved aside."""
        path = tmp_path / "x.db"
        path.write_bytes(b"garbage" * 100)
        real_check = _sqlite_store._check

        def racing(conn: sqlite3.Connection, checked: Path) -> str | None:
            problem = real_check(conn, checked)
            if problem is not None:
                # The other process wins the race: it moves the bad file away
                # and starts a fresh store before we act on our verdict.
                checked.replace(tmp_path / "elsewhere")
                with closing(SQLiteStore(checked)) as other:
                    other.append([ev(7)])
            return problem

        monkeypatch.setattr(_sqlite_store, "_check", racing)
        with closing(SQLiteStore(path)) as store:
            assert store.read()[0] == [ev(7)]
        assert moved_aside(path) == []

    def test_gives_up_on_a_file_that_stays_bad(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A file that is bad after every repair raises StoreError instead of looping."""
        monkeypatch.setattr(_sqlite_store, "_check", lambda conn, path: "is cursed")
        path = tmp_path / "x.db"
        with pytest.raises(StoreError, match="is cursed"):
            SQLiteStore(path)
        assert len(moved_aside(path)) == _sqlite_store._ATTEMPTS

    def test_newer_schema_is_refused(self, tmp_path: Path) -> None:
        """A file from a newer version raises StoreError and is left untouched."""
        path = tmp_path / "x.db"
        SQLiteStore(path).close()
        with closing(raw(path)) as conn:
            conn.execute("PRAGMA user_version = 99")
        before = path.read_bytes()
        with pytest.raises(StoreError, match="upgrade langchain-tokencal"):
            SQLiteStore(path)
        assert path.read_bytes() == before
        assert moved_aside(path) == []

    def test_empty_file_is_migrated(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        """An empty file (version 0) is brought to the latest version silently."""
        path = tmp_path / "x.db"
        path.touch()
        with (
            caplog.at_level(logging.WARNING, logger=STORAGE_LOGGER),
            closing(SQLiteStore(path)) as store,
        ):
            store.append([ev(1)])
        assert warnings_of(caplog) == []
        with closing(raw(path)) as conn:
            assert conn.execute("PRAGMA user_version").fetchone() == (
                max(_sqlite_store.MIGRATIONS),
            )

    def test_migration_from_older_schema(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A file at an older version gets the newer migrations once, data kept."""
        path = tmp_path / "x.db"
        with closing(SQLiteStore(path)) as store:
            store.append([ev(1)])
            store.add_usage("gpt-4o", [1, 2, 3, 0, 0, 0, 0, 0])
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
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A migration that fails leaves the file at its old version, data intact."""
        path = tmp_path / "x.db"
        with closing(SQLiteStore(path)) as store:
            store.append([ev(1)])

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
