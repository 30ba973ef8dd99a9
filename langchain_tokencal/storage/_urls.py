"""Opening a store from a URL, the in-memory store, and the default location."""

from __future__ import annotations

import bisect
import os
import sys
import threading
from collections import deque
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Final

from langchain_tokencal.errors import ConfigError
from langchain_tokencal.storage._base import (
    USAGE_FIELDS,
    Store,
    StoreBase,
    StoreError,
    check_keep,
    check_totals,
)
from langchain_tokencal.storage._redis import RedisStore
from langchain_tokencal.storage._sqlite import SQLiteStore

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from langchain_tokencal.events import LearnEvent

__all__ = [
    "USAGE_FIELDS",
    "MemoryStore",
    "RedisStore",
    "SQLiteStore",
    "Store",
    "StoreError",
    "default_store_url",
    "open_store",
]

ENV_VAR: Final = "TOKENCAL_STORE"
_APP_DIR: Final = "langchain-tokencal"
_FILE_NAME: Final = "calibration.db"
_ACCEPTED: Final = (
    "memory://, sqlite:///relative/path.db, sqlite:////absolute/path.db, "
    "redis://host:port/db, rediss://host:port/db, unix:///path/redis.sock?db=0, "
    "or a Store instance"
)


class MemoryStore(StoreBase):
    """A store in this process's memory: the library's default.

    Events live in one list ordered by a sequence number (the cursor); a
    model's oldest events are dropped by `compact`, or as soon as it has more
    than ``max_events`` when that is set. Dropped slots are swept out in bulk,
    so an append costs O(1) amortized. Thread-safe.

    Args:
        max_events: Keep at most this many newest events per model.

    Example:
        ```python
        from langchain_tokencal.events import LearnEvent
        from langchain_tokencal.storage._urls import MemoryStore

        store = MemoryStore(max_events=2)
        store.append([LearnEvent("m", "residual", (i,), "me", 0.0) for i in range(3)])
        events, _ = store.read()
        assert [e.values for e in events] == [(1,), (2,)]
        ```
    """

    def __init__(self, *, max_events: int | None = None) -> None:
        """Create an empty store."""
        if max_events is not None and (
            isinstance(max_events, bool)
            or not isinstance(max_events, int)
            or max_events < 1
        ):
            msg = f"max_events must be a positive integer or None, got {max_events!r}."
            raise ConfigError(msg)
        self.url = "memory://"
        self.max_events = max_events
        self._lock = threading.Lock()
        self._closed = False
        # Parallel lists: sequence numbers (sorted) and events, None once dropped.
        self._seqs: list[int] = []
        self._events: list[LearnEvent | None] = []
        self._dropped = 0
        self._next = 1
        self._by_model: dict[str, deque[int]] = {}
        self._usage: dict[str, list[int]] = {}

    def append(self, events: Sequence[LearnEvent]) -> None:
        """Add events (see `Store.append`)."""
        with self._lock:
            self._check_open("append events to")
            limit = self.max_events
            for event in events:
                seq = self._next
                self._next += 1
                self._seqs.append(seq)
                self._events.append(event)
                seqs = self._by_model.get(event.model)
                if seqs is None:
                    seqs = self._by_model[event.model] = deque()
                seqs.append(seq)
                if limit is not None and len(seqs) > limit:
                    self._drop(seqs.popleft())
            self._sweep_if_sparse()

    def read(self, after: str = "") -> tuple[list[LearnEvent], str]:
        """Return the events after ``after`` (see `Store.read`)."""
        start = _memory_cursor(after)
        with self._lock:
            self._check_open("read")
            first = bisect.bisect_right(self._seqs, start)
            found = [
                (seq, event)
                for seq, event in zip(
                    self._seqs[first:], self._events[first:], strict=True
                )
                if event is not None
            ]
        if not found:
            return [], after
        return [event for _, event in found], str(found[-1][0])

    def add_usage(self, model: str, totals: Sequence[int]) -> None:
        """Add usage sums (see `Store.add_usage`)."""
        values = check_totals(totals)
        with self._lock:
            self._check_open("add usage to")
            sums = self._usage.get(model)
            if sums is None:
                self._usage[model] = values
            else:
                for i, value in enumerate(values):
                    sums[i] += value

    def usage(self) -> dict[str, list[int]]:
        """Return a copy of every model's usage totals (see `Store.usage`)."""
        with self._lock:
            self._check_open("read usage from")
            return {model: list(sums) for model, sums in sorted(self._usage.items())}

    def compact(self, keep: int) -> int:
        """Drop all but each model's ``keep`` newest events (see `Store.compact`)."""
        keep = check_keep(keep)
        with self._lock:
            self._check_open("compact")
            deleted = 0
            for model, seqs in list(self._by_model.items()):
                while len(seqs) > keep:
                    self._drop(seqs.popleft())
                    deleted += 1
                if not seqs:
                    del self._by_model[model]
            if deleted:
                self._sweep()
            return deleted

    def close(self) -> None:
        """Mark the store closed; later calls raise `StoreError`."""
        with self._lock:
            self._closed = True

    def _check_open(self, what: str) -> None:
        if self._closed:
            msg = f"cannot {what} {self.url}: the store is closed."
            raise StoreError(msg)

    def _drop(self, seq: int) -> None:
        self._events[bisect.bisect_left(self._seqs, seq)] = None
        self._dropped += 1

    def _sweep_if_sparse(self) -> None:
        # Sweeping when half the slots are dead keeps appends O(1) amortized.
        if self._dropped > 64 and self._dropped * 2 > len(self._seqs):  # noqa: PLR2004 - small logs are not worth a sweep
            self._sweep()

    def _sweep(self) -> None:
        live = [
            (s, e)
            for s, e in zip(self._seqs, self._events, strict=True)
            if e is not None
        ]
        self._seqs = [s for s, _ in live]
        self._events = [e for _, e in live]
        self._dropped = 0


def _memory_cursor(after: str) -> int:
    if not after:
        return 0
    if after.isdigit():
        return int(after)
    msg = f"{after!r} is not a cursor of memory://; pass '' to read from the start."
    raise StoreError(msg)


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
        from langchain_tokencal.storage._urls import MemoryStore, open_store

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
            path, timeout = _sqlite_target(target, rest)
            return SQLiteStore(path, timeout=timeout)
        if scheme in {"redis", "rediss", "unix"}:
            return RedisStore(target)
        hint = f" For a file, use 'sqlite:///{target}'." if not sep and target else ""
        msg = f"Unknown store {target!r}; expected {_ACCEPTED}.{hint}"
        raise ConfigError(msg)
    # Typed callers cannot get here with anything but a Store; others can.
    given: object = target
    if isinstance(given, Store):
        return given
    msg = f"Unknown store {given!r} ({type(given).__name__}); expected {_ACCEPTED}."
    raise ConfigError(msg)


def _sqlite_target(url: str, rest: str) -> tuple[str, float]:
    """Path and timeout of ``sqlite:///path[?timeout=seconds]``."""
    path, _, query = rest.partition("?")
    if not path.startswith("/") or len(path) < 2:  # noqa: PLR2004 - "/" plus a name
        msg = (
            f"Unknown store {url!r}; a SQLite URL is sqlite:///relative/path.db "
            "or sqlite:////absolute/path.db."
        )
        raise ConfigError(msg)
    path = path[1:]
    if path == ":memory:":
        msg = "Use 'memory://' for a store in memory, not 'sqlite:///:memory:'."
        raise ConfigError(msg)
    timeout = 5.0
    for pair in filter(None, query.split("&")):
        key, _, value = pair.partition("=")
        try:
            if key != "timeout":
                raise ValueError(key)  # noqa: TRY301 - one message for any bad option
            timeout = float(value)
        except ValueError:
            msg = (
                f"Unknown option {pair!r} in {url!r}; "
                "a SQLite URL accepts only timeout=<seconds>."
            )
            raise ConfigError(msg) from None
    return path, timeout


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
        from langchain_tokencal.storage._urls import default_store_url, open_store

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
