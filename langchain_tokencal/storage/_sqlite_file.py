"""The file side of the SQLite backend: folders, schema migrations, repair.

`MIGRATIONS` maps a schema version to the function that brings a file from
the version before it (see `langchain_tokencal.storage._sqlite`). Never edit
a released migration; add the next one.
"""

from __future__ import annotations

import contextlib
import math
import os
import sqlite3
import time
from typing import TYPE_CHECKING, Final

from langchain_tokencal.errors import ConfigError
from langchain_tokencal.storage._base import USAGE_FIELDS, StoreError, logger

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

__all__ = [
    "MIGRATIONS",
    "check_timeout",
    "check_version",
    "create",
    "identity",
    "migrate",
    "move_aside",
    "open_file",
    "open_read_only",
    "rollback",
]

# Files a crash or a foreign program may leave beside the database; they belong
# to the file and move aside with it (a stale journal would be replayed into
# the fresh file otherwise).
_SIDE_FILES: Final = ("-wal", "-shm", "-journal")
# Longest lock wait accepted, in seconds (a day; sqlite3 wants a C int of ms).
_MAX_TIMEOUT: Final = 86_400.0
# Our tables' names start with this; any other table is a foreign program's.
_PREFIX: Final = "tokencal_"
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


def _migrate_to_2(conn: sqlite3.Connection) -> None:
    """Give events an identity, applied once: ``uid`` and each origin's mark.

    Rows from version 1 keep a NULL ``uid`` (no identity; NULLs never collide
    in a UNIQUE index).
    """
    conn.execute("ALTER TABLE tokencal_events ADD COLUMN uid TEXT")
    conn.execute("CREATE UNIQUE INDEX tokencal_events_by_uid ON tokencal_events (uid)")
    conn.execute(
        "CREATE TABLE tokencal_origins (origin TEXT PRIMARY KEY,"
        " seq INTEGER NOT NULL) WITHOUT ROWID"
    )


def _migrate_to_3(conn: sqlite3.Connection) -> None:
    """Snapshots of the learned state, the leases of their writers, marks.

    ``tokencal_marks`` holds ``snapshot`` (the cursor the snapshot covers)
    and ``pruned`` (the highest id compaction deleted behind it).
    """
    conn.execute(
        "CREATE TABLE tokencal_snapshots (model TEXT PRIMARY KEY,"
        " state TEXT NOT NULL) WITHOUT ROWID"
    )
    conn.execute(
        "CREATE TABLE tokencal_marks (name TEXT PRIMARY KEY,"
        " value INTEGER NOT NULL) WITHOUT ROWID"
    )
    conn.execute(
        "CREATE TABLE tokencal_leases (name TEXT PRIMARY KEY, owner TEXT NOT NULL,"
        " expires REAL NOT NULL) WITHOUT ROWID"
    )


MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {
    1: _migrate_to_1,
    2: _migrate_to_2,
    3: _migrate_to_3,
}


def check_timeout(timeout: object) -> float:
    """Validate a lock timeout in seconds (finite, 0 to one day).

    Raises:
        ConfigError: It is not such a number (``nan``, ``inf``, negative...).
    """
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, (int, float))
        or not math.isfinite(timeout)
        or not 0 <= timeout <= _MAX_TIMEOUT
    ):
        msg = (
            f"timeout must be a number of seconds from 0 to {_MAX_TIMEOUT:g}, "
            f"got {timeout!r}."
        )
        raise ConfigError(msg)
    return float(timeout)


def _mkdirs(folder: Path) -> None:
    """Create ``folder`` and its missing parents with mode 0700.

    ``Path.mkdir(parents=True)`` gives the parents the default mode (0777
    under a umask of 000); each one is created here so all are private.
    """
    missing: list[Path] = []
    while not folder.exists():
        missing.append(folder)
        if folder.parent == folder:
            break
        folder = folder.parent
    for part in reversed(missing):
        with contextlib.suppress(FileExistsError):
            part.mkdir(mode=0o700)
        # mkdir's mode is masked by the umask; a lax umask must not widen it.
        part.chmod(0o700)


def create(path: Path) -> tuple[int, int]:
    """Create the folders and an empty 0600 file, failing loudly with the reason.

    Returns:
        The file's identity (device, inode).
    """
    try:
        # A file where the folder should be: os.open below names the reason
        # (ENOTDIR) better than mkdir's "File exists".
        with contextlib.suppress(FileExistsError):
            _mkdirs(path.parent)
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


def identity(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_dev, stat.st_ino


def move_aside(path: Path, problem: str) -> None:
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


def migrate(conn: sqlite3.Connection, path: Path) -> None:
    """Apply the missing `MIGRATIONS` in one write transaction."""
    latest = max(MIGRATIONS)
    (version,) = conn.execute("PRAGMA user_version").fetchone()
    if version == latest:
        return
    check_version(version, latest, path)
    conn.execute("BEGIN IMMEDIATE")
    try:
        # Another process may have migrated while we waited for the lock.
        (version,) = conn.execute("PRAGMA user_version").fetchone()
        check_version(version, latest, path)
        for step in range(version + 1, latest + 1):
            MIGRATIONS[step](conn)
            logger.debug("migrated %s to schema version %d", path, step)
        conn.execute(f"PRAGMA user_version = {int(latest)}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.rollback()
        raise


def check_version(version: int, latest: int, path: Path) -> None:
    if version > latest:
        msg = (
            f"the store {path} has schema version {version}, newer than this "
            f"langchain-tokencal understands ({latest}); upgrade langchain-tokencal "
            "or use another store file."
        )
        raise StoreError(msg)


def rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        try:
            conn.rollback()
        except sqlite3.Error:
            logger.debug("rollback failed", exc_info=True)


def open_file(path: Path, timeout: float) -> sqlite3.Connection:
    """Connect, moving a corrupt or foreign file aside, then migrate."""
    for _ in range(_ATTEMPTS):
        checked = create(path)
        conn = _connect(path, timeout)
        problem = _check(conn, path)
        if problem is None:
            break
        conn.close()
        # Another process may have repaired the file since we checked it:
        # move aside only the very file we checked, then look again.
        if identity(path) == checked:
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


def open_read_only(path: Path, timeout: float) -> sqlite3.Connection:
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
