"""The SQLite backend of `langchain_tokencal.storage`: one file, many processes.

Layout (schema version 1, kept in ``PRAGMA user_version``):

```
tokencal_events(id INTEGER PRIMARY KEY AUTOINCREMENT, model TEXT, line TEXT)
    one row per event; ``line`` is `encode_event`'s JSON, ``id`` the cursor
    (AUTOINCREMENT, so an id deleted by compaction is never handed out again
    and a reader's cursor stays meaningful)
tokencal_events_by_model(model, id)      index that makes compaction cheap
tokencal_usage(model PRIMARY KEY, input_tokens, ..., output_audio)
    one row per model, integer sums in `USAGE_FIELDS` order
```

Migrations: `MIGRATIONS` maps a schema version to the function that brings a
file from the version before it. Opening a file applies the missing ones in
order, in one write transaction together with the ``user_version`` bump, so a
crash leaves the old version intact and processes opening a file at once
migrate it exactly once. To change the layout, add ``MIGRATIONS[n + 1]``;
never edit a released migration, and keep ``tokencal_events`` (its presence
tells our files from foreign ones).

Concurrency: WAL journal (readers never block the writer), ``busy_timeout`` so
writers queue instead of failing, and every write in one ``BEGIN IMMEDIATE``
transaction. A process killed mid-write leaves an uncommitted WAL tail that
the next opener ignores.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Final, TypeVar

from langchain_tokencal.events import encode_event
from langchain_tokencal.storage._base import (
    USAGE_FIELDS,
    StoreBase,
    StoreError,
    check_keep,
    check_totals,
    closed_error,
    cursor_error,
    decode_rows,
    logger,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from langchain_tokencal.events import LearnEvent

__all__ = ["MIGRATIONS", "SQLiteStore"]

_T = TypeVar("_T")

_PREFIX: Final = "tokencal_"
_USAGE_COLUMNS: Final = ", ".join(USAGE_FIELDS)
_ADD_USAGE: Final = (
    f"INSERT INTO tokencal_usage (model, {_USAGE_COLUMNS}) "  # noqa: S608 - constant column names
    f"VALUES (?, {', '.join('?' * len(USAGE_FIELDS))}) "
    "ON CONFLICT (model) DO UPDATE SET "
    + ", ".join(f"{c} = {c} + excluded.{c}" for c in USAGE_FIELDS)
)
# Files a crash or a foreign program may leave beside the database; they belong
# to the file and move aside with it (a stale journal would be replayed into
# the fresh file otherwise).
_SIDE_FILES: Final = ("-wal", "-shm", "-journal")
# Opens that find a bad file before giving up (each moves one file aside).
_ATTEMPTS: Final = 3


def _migrate_to_1(conn: sqlite3.Connection) -> None:
    """Create the first layout."""
    conn.execute(
        "CREATE TABLE tokencal_events ("
        " id INTEGER PRIMARY KEY AUTOINCREMENT,"
        " model TEXT NOT NULL,"
        " line TEXT NOT NULL)"
    )
    conn.execute("CREATE INDEX tokencal_events_by_model ON tokencal_events (model, id)")
    columns = ", ".join(f"{c} INTEGER NOT NULL DEFAULT 0" for c in USAGE_FIELDS)
    conn.execute(
        f"CREATE TABLE tokencal_usage (model TEXT PRIMARY KEY, {columns}) WITHOUT ROWID"
    )


MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {1: _migrate_to_1}


class SQLiteStore(StoreBase):
    """A store in one SQLite file that several processes may share.

    Each `append` is one transaction, durable when it returns (WAL,
    ``synchronous=FULL``). A file that is not a database, or holds tables
    that are not ours, is renamed to ``<name>.corrupt-<UTC time>`` with one
    warning and a fresh store starts. The file is created with mode 0600.
    Thread-safe: one connection behind a lock. Open a store after forking,
    not before.

    Args:
        path: The database file; missing folders are created.
        timeout: Seconds a write waits for another process's write.

    Raises:
        StoreError: The folder or the file cannot be created or opened (the
            message names the path and the operating system's reason), or
            the file comes from a newer langchain-tokencal.

    Example:
        ```python
        import tempfile
        from pathlib import Path

        from langchain_tokencal.events import LearnEvent
        from langchain_tokencal.storage import SQLiteStore

        with SQLiteStore(Path(tempfile.mkdtemp()) / "calibration.db") as store:
            store.append([LearnEvent("gpt-4o", "residual", (0.02,), "me", 0.0)])
            store.add_usage("gpt-4o", [120, 30, 150, 0, 0, 0, 0, 0])
            events, cursor = store.read()
        ```
    """

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 5.0) -> None:
        """Open (creating, repairing or migrating) the file at ``path``."""
        self.path = Path(os.path.abspath(Path(path).expanduser()))  # noqa: PTH100 - keep symlinks as given
        self.url = "sqlite:///" + self.path.as_posix()
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = _open(self.path, timeout)

    def append(self, events: Sequence[LearnEvent]) -> None:
        """Add events in one transaction (see `Store.append`)."""
        rows = [(event.model, encode_event(event)) for event in events]
        if not rows:
            return

        def write(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "INSERT INTO tokencal_events (model, line) VALUES (?, ?)", rows
            )

        self._write("append events to", write)

    def read(self, after: str = "") -> tuple[list[LearnEvent], str]:
        """Return the events with an id above ``after`` (see `Store.read`)."""
        start = _parse_cursor(after, self.url)
        rows = self._run(
            "read",
            lambda conn: conn.execute(
                "SELECT id, line FROM tokencal_events WHERE id > ? ORDER BY id",
                (start,),
            ).fetchall(),
        )
        if not rows:
            return [], after
        return decode_rows(((str(i), line) for i, line in rows), self.url), str(
            rows[-1][0]
        )

    def add_usage(self, model: str, totals: Sequence[int]) -> None:
        """Add usage sums with one upsert (see `Store.add_usage`)."""
        values = check_totals(totals)
        self._write(
            "add usage to", lambda conn: conn.execute(_ADD_USAGE, (model, *values))
        )

    def usage(self) -> dict[str, list[int]]:
        """Return every model's usage totals (see `Store.usage`)."""
        rows = self._run(
            "read usage from",
            lambda conn: conn.execute(
                f"SELECT model, {_USAGE_COLUMNS} FROM tokencal_usage ORDER BY model"  # noqa: S608 - constant column names
            ).fetchall(),
        )
        return {row[0]: [int(v) for v in row[1:]] for row in rows}

    def compact(self, keep: int) -> int:
        """Delete all but each model's ``keep`` newest events in one transaction."""
        keep = check_keep(keep)

        def delete(conn: sqlite3.Connection) -> int:
            deleted = 0
            models = [
                m for (m,) in conn.execute("SELECT DISTINCT model FROM tokencal_events")
            ]
            for model in models:
                if keep == 0:
                    cur = conn.execute(
                        "DELETE FROM tokencal_events WHERE model = ?", (model,)
                    )
                else:
                    # The newest id of this model that must go, if any.
                    cur = conn.execute(
                        "DELETE FROM tokencal_events WHERE model = ?1 AND id <= ("
                        " SELECT id FROM tokencal_events WHERE model = ?1"
                        " ORDER BY id DESC LIMIT 1 OFFSET ?2)",
                        (model, keep),
                    )
                deleted += max(cur.rowcount, 0)
            return deleted

        return self._write("compact", delete)

    def close(self) -> None:
        """Close the connection (checkpointing the WAL if it is the last one)."""
        with self._lock:
            conn, self._conn = self._conn, None
            if conn is not None:
                conn.close()

    def _run(self, what: str, op: Callable[[sqlite3.Connection], _T]) -> _T:
        """Run ``op`` under the lock, turning SQLite's errors into `StoreError`."""
        with self._lock:
            conn = self._conn
            if conn is None:
                raise closed_error(what, self.url)
            try:
                return op(conn)
            except sqlite3.Error as err:
                if conn.in_transaction:
                    conn.rollback()
                msg = f"cannot {what} the store {self.path}: {err}"
                raise StoreError(msg) from err

    def _write(self, what: str, op: Callable[[sqlite3.Connection], _T]) -> _T:
        """Run ``op`` in its own write transaction (all or nothing)."""

        def transaction(conn: sqlite3.Connection) -> _T:
            # IMMEDIATE takes the write lock up front, so a busy file makes us
            # wait in busy_timeout instead of failing on a lock upgrade.
            conn.execute("BEGIN IMMEDIATE")
            result = op(conn)
            conn.execute("COMMIT")
            return result

        return self._run(what, transaction)


def _parse_cursor(after: str, url: str) -> int:
    if not after:
        return 0
    try:
        start = int(after)
    except ValueError:
        start = -1
    if start < 0:
        raise cursor_error(after, url)
    return start


def _open(path: Path, timeout: float) -> sqlite3.Connection:
    """Connect, moving a corrupt or foreign file aside, then migrate."""
    for _ in range(_ATTEMPTS):
        identity = _create(path)
        conn = _connect(path, timeout)
        problem = _check(conn, path)
        if problem is None:
            break
        conn.close()
        # Another process may have repaired the file since we checked it:
        # move aside only the very file we checked, then look again.
        if _identity(path) == identity:
            _move_aside(path, problem)
    else:
        msg = f"cannot open the store {path}: it {problem}, again after a repair."
        raise StoreError(msg)
    try:
        # Checking first avoids taking the exclusive lock the switch needs on
        # every open; WAL mode is persistent in the file.
        (mode,) = conn.execute("PRAGMA journal_mode").fetchone()
        if str(mode).lower() != "wal":
            conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        _migrate(conn, path)
    except sqlite3.Error as err:
        conn.close()
        msg = f"cannot open the store {path}: {err}"
        raise StoreError(msg) from err
    except StoreError:
        conn.close()
        raise
    return conn


def _create(path: Path) -> tuple[int, int]:
    """Create the folders and an empty 0600 file, failing loudly with the reason.

    Returns:
        The file's identity (device, inode).
    """
    try:
        # A file where the folder should be: os.open below names the reason
        # (ENOTDIR) better than mkdir's "File exists".
        with contextlib.suppress(FileExistsError):
            path.parent.mkdir(parents=True, exist_ok=True)
        # SQLite gives the -wal and -shm files the database file's mode, so
        # creating it 0600 ourselves keeps all three private.
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            stat = os.fstat(fd)
        finally:
            os.close(fd)
    except OSError as err:
        msg = f"cannot open the store {path}: {err.strerror or err}"
        raise StoreError(msg) from err
    return stat.st_dev, stat.st_ino


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_dev, stat.st_ino


def _connect(path: Path, timeout: float) -> sqlite3.Connection:
    try:
        # isolation_level=None: we issue BEGIN/COMMIT ourselves.
        conn = sqlite3.connect(
            path, timeout=timeout, isolation_level=None, check_same_thread=False
        )
        conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
    except sqlite3.Error as err:
        msg = f"cannot open the store {path}: {err}"
        raise StoreError(msg) from err
    return conn


def _check(conn: sqlite3.Connection, path: Path) -> str | None:
    """Why the file is not ours (to move aside), or ``None`` if it is."""
    try:
        tables = [
            name
            for (name,) in conn.execute(
                "SELECT name FROM sqlite_master WHERE type IN ('table', 'view')"
            )
            if not name.startswith("sqlite_")
        ]
        (version,) = conn.execute("PRAGMA user_version").fetchone()
    except sqlite3.DatabaseError as err:
        # OperationalError (locked, I/O, cannot open) is a condition to report,
        # not a verdict on the file; plain DatabaseError is NOTADB or CORRUPT.
        if isinstance(err, sqlite3.OperationalError):
            conn.close()
            msg = f"cannot open the store {path}: {err}"
            raise StoreError(msg) from err
        return f"is not a readable SQLite database ({err})"
    foreign = sorted(t for t in tables if not t.startswith(_PREFIX))
    if foreign:
        return f"holds tables that are not langchain-tokencal's ({', '.join(foreign)})"
    if version and "tokencal_events" not in tables:
        return f"has schema version {version} but no langchain-tokencal tables"
    return None


def _move_aside(path: Path, problem: str) -> None:
    """Rename the file (and its side files) to ``<name>.corrupt-<UTC time>``."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
    try:
        path.replace(target)
        for suffix in _SIDE_FILES:
            side = path.with_name(path.name + suffix)
            if side.exists():
                side.replace(target.with_name(target.name + suffix))
    except OSError as err:
        reason = err.strerror or err
        msg = f"the store {path} {problem}, and moving it aside failed: {reason}"
        raise StoreError(msg) from err
    logger.warning(
        "the store %s %s; moved it to %s and started a fresh one", path, problem, target
    )


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    """Apply the missing `MIGRATIONS` in one write transaction."""
    latest = max(MIGRATIONS)
    (version,) = conn.execute("PRAGMA user_version").fetchone()
    if version == latest:
        return
    _check_version(version, latest, path)
    conn.execute("BEGIN IMMEDIATE")
    try:
        # Another process may have migrated while we waited for the lock.
        (version,) = conn.execute("PRAGMA user_version").fetchone()
        _check_version(version, latest, path)
        for step in range(version + 1, latest + 1):
            MIGRATIONS[step](conn)
            logger.debug("migrated %s to schema version %d", path, step)
        conn.execute(f"PRAGMA user_version = {int(latest)}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.rollback()
        raise


def _check_version(version: int, latest: int, path: Path) -> None:
    if version > latest:
        msg = (
            f"the store {path} has schema version {version}, newer than this "
            f"langchain-tokencal understands ({latest}); upgrade langchain-tokencal "
            "or use another store file."
        )
        raise StoreError(msg)
