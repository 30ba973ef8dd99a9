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
    "rollback",
]

# Files a crash or a foreign program may leave beside the database; they belong
# to the file and move aside with it (a stale journal would be replayed into
# the fresh file otherwise).
_SIDE_FILES: Final = ("-wal", "-shm", "-journal")
# Longest lock wait accepted, in seconds (a day; sqlite3 wants a C int of ms).
_MAX_TIMEOUT: Final = 86_400.0


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


MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {
    1: _migrate_to_1,
    2: _migrate_to_2,
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
