"""The SQLite backend of `langchain_tokencal.storage`: one file, many processes.

Layout (schema version 2, kept in ``PRAGMA user_version``):

```
tokencal_events(id INTEGER PRIMARY KEY AUTOINCREMENT, model TEXT, line TEXT,
                uid TEXT UNIQUE)
    one row per event; ``line`` is `encode_event`'s JSON, ``id`` the cursor
    (AUTOINCREMENT, so an id deleted by compaction is never handed out again
    and a reader's cursor stays meaningful), ``uid`` its identity
    ``origin:seq`` (NULL for rows of version 1 and events without one)
tokencal_events_by_model(model, id)      index that makes compaction cheap
tokencal_origins(origin PRIMARY KEY, seq)
    the highest seq applied from each origin (see `StoreBase.apply_batch`)
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

import os
import sqlite3
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Final, TypeVar

from langchain_tokencal.errors import ConfigError
from langchain_tokencal.events import encode_event
from langchain_tokencal.storage._base import (
    USAGE_FIELDS,
    StoreBase,
    StoreError,
    UsageDelta,
    check_keep,
    check_model,
    check_totals,
    closed_error,
    cursor_error,
    decode_rows,
    fresh_items,
)
from langchain_tokencal.storage._sqlite_file import (
    MIGRATIONS,
    check_timeout,
    check_version,
    create,
    migrate,
    move_aside,
    rollback,
)
from langchain_tokencal.storage._sqlite_file import identity as identity_of

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from langchain_tokencal.events import LearnEvent

__all__ = ["MIGRATIONS", "SQLiteStore", "check_timeout"]

_T = TypeVar("_T")

_PREFIX: Final = "tokencal_"
_USAGE_COLUMNS: Final = ", ".join(USAGE_FIELDS)
_ADD_USAGE: Final = (
    f"INSERT INTO tokencal_usage (model, {_USAGE_COLUMNS}) "  # noqa: S608 - constant column names
    f"VALUES (?, {', '.join('?' * len(USAGE_FIELDS))}) "
    "ON CONFLICT (model) DO UPDATE SET "
    + ", ".join(f"{c} = {c} + excluded.{c}" for c in USAGE_FIELDS)
)
# Opens that find a bad file before giving up (each moves one file aside).
_ATTEMPTS: Final = 3


class SQLiteStore(StoreBase):
    """A store in one SQLite file that several processes may share.

    Each `append` is one transaction, durable when it returns (WAL,
    ``synchronous=FULL``), and applies each event identity once (see
    `StoreBase.apply_batch`). A file that is not a database is renamed to
    ``<name>.corrupt-<UTC time>`` with one warning and a fresh store starts;
    a valid database of another program (tables that are not ours) is
    refused with `StoreError` and left untouched. The file is created with
    mode 0600 and missing folders with mode 0700. With ``read_only`` the
    file is opened with ``mode=ro`` (nothing created, migrated or written).
    Thread-safe: one connection behind a lock. Open a store after forking,
    not before.

    Args:
        path: The database file; missing folders are created.
        timeout: Seconds a write waits for another process's write.
        read_only: Open for reading only (a file or folder we may not write).

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

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        timeout: float = 5.0,
        read_only: bool = False,
    ) -> None:
        """Open (creating, repairing or migrating) the file at ``path``."""
        timeout = check_timeout(timeout)
        self.path = Path(os.path.abspath(Path(path).expanduser()))  # noqa: PTH100 - keep symlinks as given
        self.url = "sqlite:///" + self.path.as_posix()
        self.read_only = read_only
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = (
            _open_read_only(self.path, timeout)
            if read_only
            else _open(self.path, timeout)
        )

    def apply_batch(
        self, events: Sequence[LearnEvent], usage: Sequence[UsageDelta] = ()
    ) -> None:
        """Append events and add usage in one transaction, once per identity.

        Each origin's highest applied ``seq`` is kept in ``tokencal_origins``
        (so an event deleted by compaction is not appended again), and
        ``uid`` is UNIQUE with ``INSERT OR IGNORE`` besides.
        """
        for delta in usage:
            check_model(delta.model)
            check_totals(delta.totals)
        lines = [(e, encode_event(e)) for e in events]
        for event in events:
            check_model(event.model)
        if not lines and not usage:
            return

        def write(conn: sqlite3.Connection) -> None:
            def applied(origin: str) -> int:
                row = conn.execute(
                    "SELECT seq FROM tokencal_origins WHERE origin = ?", (origin,)
                ).fetchone()
                return int(row[0]) if row else 0

            keep, marks = fresh_items([*events, *usage], applied)
            conn.executemany(
                "INSERT OR IGNORE INTO tokencal_events (model, line, uid)"
                " VALUES (?, ?, ?)",
                [
                    (e.model, line, f"{e.origin}:{e.seq}" if e.seq else None)
                    for (e, line), fresh in zip(lines, keep, strict=False)
                    if fresh
                ],
            )
            for delta, fresh in zip(usage, keep[len(lines) :], strict=True):
                if fresh:
                    conn.execute(_ADD_USAGE, (delta.model, *delta.totals))
            conn.executemany(
                "INSERT INTO tokencal_origins (origin, seq) VALUES (?, ?)"
                " ON CONFLICT (origin) DO UPDATE SET seq = max(seq, excluded.seq)",
                list(marks.items()),
            )

        self._write("append events to", write)

    def read(self, after: str = "") -> tuple[list[LearnEvent], str]:
        """Return the events with an id above ``after`` (see `Store.read`)."""
        start = _parse_cursor(after, self.url)
        rows = self._run(
            "read",
            # CAST to BLOB: sqlite3 decodes TEXT for the whole result and one
            # non-UTF-8 row would fail every read; bytes are decoded per row.
            lambda conn: conn.execute(
                "SELECT id, CAST(line AS BLOB) FROM tokencal_events"
                " WHERE id > ? ORDER BY id",
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
        model = check_model(model)
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
                rollback(conn)
                msg = f"cannot {what} the store {self.path}: {err}"
                raise StoreError(msg) from err
            except (UnicodeEncodeError, OverflowError) as err:
                rollback(conn)
                msg = (
                    f"cannot {what} the store {self.path}: "
                    f"a value cannot be stored ({err})"
                )
                raise ConfigError(msg) from err
            except BaseException:
                # Whatever failed (a value sqlite3 cannot bind, say), the
                # write lock must not outlive the call.
                rollback(conn)
                raise

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
        identity = create(path)
        conn = _connect(path, timeout)
        problem = _check(conn, path)
        if problem is None:
            break
        conn.close()
        # Another process may have repaired the file since we checked it:
        # move aside only the very file we checked, then look again.
        if identity_of(path) == identity:
            move_aside(path, problem)
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
        migrate(conn, path)
    except sqlite3.Error as err:
        conn.close()
        msg = f"cannot open the store {path}: {err}"
        raise StoreError(msg) from err
    except StoreError:
        conn.close()
        raise
    return conn


def _open_read_only(path: Path, timeout: float) -> sqlite3.Connection:
    """Connect with ``mode=ro``: nothing is created, repaired or migrated."""
    uri = f"{path.as_uri()}?mode=ro"
    try:
        try:
            conn = sqlite3.connect(
                uri,
                uri=True,
                timeout=timeout,
                isolation_level=None,
                check_same_thread=False,
            )
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.OperationalError:
            # A WAL file in a folder we may not write has no -shm to map:
            # read it as an immutable snapshot instead.
            conn = sqlite3.connect(
                f"{uri}&immutable=1",
                uri=True,
                isolation_level=None,
                check_same_thread=False,
            )
        problem = _check(conn, path)
        if problem is not None:
            msg = f"cannot open the store {path} read-only: it {problem}."
            raise StoreError(msg)
        (version,) = conn.execute("PRAGMA user_version").fetchone()
        check_version(version, max(MIGRATIONS), path)
        if not version:
            msg = (
                f"cannot open the store {path} read-only: it holds no calibration yet."
            )
            raise StoreError(msg)
    except sqlite3.Error as err:
        msg = f"cannot open the store {path} read-only: {err}"
        raise StoreError(msg) from err
    return conn


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
    problem = None
    if foreign:
        problem = (
            f"holds tables that are not langchain-tokencal's ({', '.join(foreign)})"
        )
    elif version and "tokencal_events" not in tables:
        problem = f"has schema version {version} but no langchain-tokencal tables"
    if problem is not None:
        # A valid database of another program: its data is not ours to move.
        conn.close()
        msg = (
            f"the store {path} is a SQLite database that {problem}; it is left "
            "untouched. Point store= at a file of its own."
        )
        raise StoreError(msg)
    return None
