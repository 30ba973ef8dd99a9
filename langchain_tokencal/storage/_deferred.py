"""A store that could not be opened yet, opened again on each use.

A Redis server that is down when a handler starts must not stop the
handler: it counts in memory, and the sync thread reaches the store later.
"""

from __future__ import annotations

import importlib.util
import logging
from typing import TYPE_CHECKING

from langchain_tokencal.storage._base import (
    Snapshot,
    Store,
    StoreBase,
    StoreError,
    UsageDelta,
    apply_batch,
    supports_snapshots,
)
from langchain_tokencal.storage._redact import redact_url
from langchain_tokencal.storage._urls import open_store

if TYPE_CHECKING:
    from collections.abc import Sequence

    from langchain_tokencal.events import LearnEvent

__all__ = ["DeferredStore", "open_or_defer"]

logger = logging.getLogger("langchain_tokencal.storage._sync")


class DeferredStore(StoreBase):
    """A store that could not be opened yet: each use tries to open it again."""

    def __init__(self, target: str, url: str) -> None:
        self._target = target
        self.url = url
        self._store: Store | None = None

    def _open(self) -> Store:
        if self._store is None:
            self._store = open_store(self._target)
        return self._store

    def append(self, events: Sequence[LearnEvent]) -> None:
        self._open().append(events)

    def apply_batch(
        self, events: Sequence[LearnEvent], usage: Sequence[UsageDelta] = ()
    ) -> None:
        apply_batch(self._open(), events, usage)

    def read(self, after: str = "") -> tuple[list[LearnEvent], str]:
        return self._open().read(after)

    def add_usage(self, model: str, totals: Sequence[int]) -> None:
        self._open().add_usage(model, totals)

    def usage(self) -> dict[str, list[int]]:
        return self._open().usage()

    def compact(self, keep: int) -> int:
        return self._open().compact(keep)

    def read_snapshot(self) -> Snapshot | None:
        store = self._open()
        return store.read_snapshot() if supports_snapshots(store) else None

    def write_snapshot(self, snapshot: Snapshot, base: str) -> int | None:
        store = self._open()
        return (
            store.write_snapshot(snapshot, base) if supports_snapshots(store) else None
        )

    def take_lease(self, name: str, owner: str, seconds: float) -> bool:
        store = self._open()
        return supports_snapshots(store) and store.take_lease(name, owner, seconds)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()


def open_or_defer(target: str | Store | None) -> Store:
    """Open a store; one that is unreachable now is opened on a later sync.

    Raises:
        ConfigError: On an unknown scheme.
        StoreError: For a SQLite path that cannot be used (the user's path is
            wrong, not a server down: fail loudly).
    """
    try:
        return open_store(target)
    except StoreError as err:
        if (
            not isinstance(target, str)
            or target.startswith("sqlite:")
            or importlib.util.find_spec("redis") is None
        ):
            # A wrong path or a missing package will not fix itself: say so now.
            raise
        # The first failed sync logs the one warning.
        logger.debug("tokencal: store not opened yet: %s", err)
        return DeferredStore(target, redact_url(target))
