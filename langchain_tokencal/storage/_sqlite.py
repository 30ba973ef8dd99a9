"""The SQLite backend of `langchain_tokencal.storage`: one file, many processes.

Layout (schema version 3, kept in ``PRAGMA user_version``):

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
tokencal_snapshots(model PRIMARY KEY, state)    (version 3)
    the latest snapshot: each model's learned state as JSON
tokencal_marks(name PRIMARY KEY, value)
    ``snapshot``: the id the snapshot covers; ``pruned``: the highest id
    deleted behind it (a cursor below it has lost events: `CursorExpiredError`)
tokencal_leases(name PRIMARY KEY, owner, expires)
    who writes snapshots, until when (wall-clock seconds)
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
import time
from pathlib import Path
from typing import TYPE_CHECKING, Final, TypeVar

from langchain_tokencal.errors import ConfigError
from langchain_tokencal.events import encode_event
from langchain_tokencal.storage._base import (
    USAGE_FIELDS,
    CursorExpiredError,
    Snapshot,
    StoreBase,
    StoreError,
    UsageDelta,
    check_keep,
    check_model,
    check_totals,
    closed_error,
    cursor_error,
    decode_rows,
    decode_states,
    fresh_items,
)
from langchain_tokencal.storage._sqlite_file import (
    MIGRATIONS,
    check_timeout,
    open_file,
    open_read_only,
    rollback,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from langchain_tokencal.events import LearnEvent

__all__ = ["MIGRATIONS", "SQLiteStore", "check_timeout"]

_T = TypeVar("_T")

_USAGE_COLUMNS: Final = ", ".join(USAGE_FIELDS)
_ADD_USAGE: Final = (
    f"INSERT INTO tokencal_usage (model, {_USAGE_COLUMNS}) "  # noqa: S608 - constant column names
    f"VALUES (?, {', '.join('?' * len(USAGE_FIELDS))}) "
    "ON CONFLICT (model) DO UPDATE SET "
    + ", ".join(f"{c} = {c} + excluded.{c}" for c in USAGE_FIELDS)
)


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
            open_read_only(self.path, timeout)
            if read_only
            else open_file(self.path, timeout)
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
        """Return the events with an id above ``after`` (see `Store.read`).

        Raises:
            CursorExpiredError: Compaction deleted events after ``after``.
        """
        start = _parse_cursor(after, self.url)

        def select(conn: sqlite3.Connection) -> list[tuple[int, bytes]] | None:
            # One read transaction: the mark and the rows agree.
            conn.execute("BEGIN")
            if start and start < _mark(conn, "pruned"):
                conn.execute("COMMIT")
                return None
            # CAST to BLOB: sqlite3 decodes TEXT for the whole result and one
            # non-UTF-8 row would fail every read; bytes are decoded per row.
            rows = conn.execute(
                "SELECT id, CAST(line AS BLOB) FROM tokencal_events"
                " WHERE id > ? ORDER BY id",
                (start,),
            ).fetchall()
            conn.execute("COMMIT")
            return rows

        rows = self._run("read", select)
        if rows is None:
            msg = f"cursor {after} of {self.url} is behind its compacted events"
            raise CursorExpiredError(msg)
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

    def read_snapshot(self) -> Snapshot | None:
        """The latest snapshot (see `StoreBase.read_snapshot`)."""

        def select(conn: sqlite3.Connection) -> Snapshot | None:
            conn.execute("BEGIN")
            cursor = _mark(conn, "snapshot")
            rows = (
                conn.execute(
                    "SELECT model, CAST(state AS BLOB) FROM tokencal_snapshots"
                ).fetchall()
                if cursor
                else []
            )
            conn.execute("COMMIT")
            if not cursor:
                return None
            return Snapshot(str(cursor), decode_states(rows, self.url))

        return self._run("read the snapshot of", select)

    def write_snapshot(self, snapshot: Snapshot, base: str) -> int | None:
        """Replace the snapshot in one transaction (see `StoreBase.write_snapshot`)."""
        cursor = _parse_cursor(snapshot.cursor, self.url)
        old = _parse_cursor(base, self.url)
        for model in snapshot.states:
            check_model(model)

        def write(conn: sqlite3.Connection) -> int | None:
            if _mark(conn, "snapshot") != old or cursor < old:
                return None
            conn.execute("DELETE FROM tokencal_snapshots")
            conn.executemany(
                "INSERT INTO tokencal_snapshots (model, state) VALUES (?, ?)",
                sorted(snapshot.states.items()),
            )
            deleted = conn.execute(
                "DELETE FROM tokencal_events WHERE id <= ?", (old,)
            ).rowcount
            conn.executemany(
                "INSERT INTO tokencal_marks (name, value) VALUES (?, ?)"
                " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                [("snapshot", cursor), ("pruned", max(old, _mark(conn, "pruned")))],
            )
            return max(deleted, 0)

        return self._write("write a snapshot to", write)

    def applied(self, origin: str) -> int:
        """The origin's mark in ``tokencal_origins`` (see `StoreBase.applied`)."""
        row = self._run(
            "read the origins of",
            lambda conn: conn.execute(
                "SELECT seq FROM tokencal_origins WHERE origin = ?", (origin,)
            ).fetchone(),
        )
        return int(row[0]) if row else 0

    def take_lease(self, name: str, owner: str, seconds: float) -> bool:
        """Take or renew a lease row (see `StoreBase.take_lease`)."""
        now = time.time()

        def take(conn: sqlite3.Connection) -> bool:
            cur = conn.execute(
                "INSERT INTO tokencal_leases (name, owner, expires) VALUES (?, ?, ?)"
                " ON CONFLICT (name) DO UPDATE SET owner = excluded.owner,"
                " expires = excluded.expires"
                " WHERE tokencal_leases.owner = excluded.owner"
                " OR tokencal_leases.expires < ?",
                (name, owner, now + seconds, now),
            )
            return cur.rowcount > 0

        return self._write("take a lease in", take)

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


def _mark(conn: sqlite3.Connection, name: str) -> int:
    """The value of a mark (0 when unset, or in a file of version 2 read-only)."""
    try:
        row = conn.execute(
            "SELECT value FROM tokencal_marks WHERE name = ?", (name,)
        ).fetchone()
    except sqlite3.OperationalError:
        if _has_table(conn, "tokencal_marks"):
            raise
        return 0
    return int(row[0]) if row else 0


def _has_table(conn: sqlite3.Connection, name: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
    ).fetchone()
    return row is not None


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
