"""Store URLs: which store a URL names, and where the default store lives.

`open_store` maps a URL (or a `Store`) to a store; `default_store_url` gives
the per-user file the ``tokencal`` command uses. Every URL an error shows goes
through `redact_url` first.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Final

from langchain_tokencal.errors import ConfigError
from langchain_tokencal.storage._base import Store, StoreError
from langchain_tokencal.storage._memory import MemoryStore
from langchain_tokencal.storage._redact import redact_url
from langchain_tokencal.storage._redis import RedisStore
from langchain_tokencal.storage._sqlite import SQLiteStore, check_timeout

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["ENV_VAR", "default_store_url", "open_store", "sqlite_path"]

ENV_VAR: Final = "TOKENCAL_STORE"
_APP_DIR: Final = "langchain-tokencal"
_FILE_NAME: Final = "calibration.db"
_ACCEPTED: Final = (
    "memory://, sqlite:///relative/path.db, sqlite:////absolute/path.db, "
    "redis://host:port/db, rediss://host:port/db, unix:///path/redis.sock?db=0, "
    "or a Store instance"
)


def open_store(target: str | Store | None) -> Store:
    """Open the store a URL names; pass a `Store` through unchanged.

    Args:
        target: ``None`` or ``"memory://"`` for a `MemoryStore`;
            ``"sqlite:///relative.db"`` or ``"sqlite:////absolute.db"`` (as in
            SQLAlchemy; ``?timeout=`` seconds optional) for a `SQLiteStore`;
            ``"redis://host:port/db"``, ``"rediss://..."`` or
            ``"unix:///path/redis.sock?db=0"`` (``?prefix=`` optional) for a
            `RedisStore`; or a store instance.

    Returns:
        The store, open.

    Raises:
        ConfigError: The target is none of the above.
        StoreError: The store cannot be opened (the message says why).

    Example:
        ```python
        from langchain_tokencal.storage import MemoryStore, open_store

        assert isinstance(open_store(None), MemoryStore)
        store = open_store("sqlite:///calibration.db")  # relative to the cwd
        store.close()
        ```
    """
    if target is None:
        return MemoryStore()
    if isinstance(target, str):
        scheme, sep, rest = target.partition("://")
        scheme = scheme.lower() if sep else ""
        if scheme == "memory" and rest == "":
            return MemoryStore()
        if scheme == "sqlite":
            path, timeout, read_only = _sqlite_target(target, rest)
            return SQLiteStore(path, timeout=timeout, read_only=read_only)
        if scheme in {"redis", "rediss", "unix"}:
            return RedisStore(target)
        shown = redact_url(target)
        hint = f" For a file, use 'sqlite:///{shown}'." if not sep and target else ""
        msg = f"Unknown store {shown!r}; expected {_ACCEPTED}.{hint}"
        raise ConfigError(msg)
    # Typed callers cannot get here with anything but a Store; others can.
    given: object = target
    if isinstance(given, Store):
        return given
    msg = f"Unknown store {given!r} ({type(given).__name__}); expected {_ACCEPTED}."
    raise ConfigError(msg)


def sqlite_path(url: str) -> str | None:
    """The file a ``sqlite:///`` URL names, or None for another kind of store.

    Raises:
        ConfigError: A malformed SQLite URL.
    """
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() != "sqlite":
        return None
    return _sqlite_target(url, rest)[0]


def _sqlite_target(url: str, rest: str) -> tuple[str, float, bool]:
    """Path, timeout and mode of ``sqlite:///path[?timeout=seconds][&mode=ro]``."""
    path, _, query = rest.partition("?")
    shown = redact_url(url)
    if not path.startswith("/") or len(path) < 2:  # noqa: PLR2004 - "/" plus a name
        msg = (
            f"Unknown store {shown!r}; a SQLite URL is sqlite:///relative/path.db "
            "or sqlite:////absolute/path.db."
        )
        raise ConfigError(msg)
    path = path[1:]
    if path == ":memory:":
        msg = "Use 'memory://' for a store in memory, not 'sqlite:///:memory:'."
        raise ConfigError(msg)
    timeout = 5.0
    read_only = False
    for pair in filter(None, query.split("&")):
        key, _, value = pair.partition("=")
        try:
            if key == "mode" and value in {"ro", "rw"}:
                read_only = value == "ro"
                continue
            if key != "timeout":
                raise ValueError(key)  # noqa: TRY301 - one message for any bad option
            timeout = check_timeout(float(value))
        except ValueError:
            msg = (
                f"Unknown option {key!r} in {shown!r}; a SQLite URL accepts "
                "timeout=<seconds from 0 to 86400> and mode=ro."
            )
            raise ConfigError(msg) from None
    return path, timeout, read_only


def default_store_url() -> str:
    r"""The store the ``tokencal`` command uses: ``$TOKENCAL_STORE`` or a per-user file.

    The file is ``calibration.db`` in ``$XDG_DATA_HOME/langchain-tokencal``
    (``~/.local/share/langchain-tokencal`` by default); on macOS in
    ``~/Library/Application Support/langchain-tokencal``; on Windows in
    ``%LOCALAPPDATA%\langchain-tokencal``. Nothing is created here.

    Raises:
        StoreError: No home folder can be determined.

    Example:
        ```python
        from langchain_tokencal.storage import default_store_url

        url = default_store_url()  # e.g. sqlite:////home/me/.local/share/...
        ```
    """
    configured = os.environ.get(ENV_VAR, "").strip()
    if configured:
        return configured
    try:
        home = Path.home()
    except RuntimeError as err:
        msg = f"cannot find a home folder for the default store; set {ENV_VAR}."
        raise StoreError(msg) from err
    folder = _data_dir(sys.platform, os.environ, home)
    return "sqlite:///" + str(folder / _FILE_NAME)


def _data_dir(platform: str, env: Mapping[str, str], home: PurePath) -> PurePath:
    """The per-user data folder of the package on ``platform``."""
    if platform.startswith("win"):
        local = env.get("LOCALAPPDATA")
        base = PurePath(local) if local else home / "AppData" / "Local"
    elif platform == "darwin":
        base = home / "Library" / "Application Support"
    else:
        # The XDG spec says to ignore a relative XDG_DATA_HOME.
        xdg = env.get("XDG_DATA_HOME", "")
        base = PurePath(xdg) if xdg.startswith("/") else home / ".local" / "share"
    return base / _APP_DIR
