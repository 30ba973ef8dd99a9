"""Where learned knowledge and usage totals persist: memory, SQLite or Redis.

A store keeps two things (see `langchain_tokencal.events`):

- an append-only log of `LearnEvent` records, read back in one order across
  all writers from a cursor;
- per-model usage sums (`USAGE_FIELDS`), incremented atomically;
- SQLite and Redis: a `Snapshot` of the learned state as of a cursor, which
  replaces the events before it, so a new process reads the snapshot and
  the events after it instead of the whole history.

Nothing else is written: no prompt text, no environment, no file paths.

- ``None`` or ``memory://``: `MemoryStore`, this process only;
- ``sqlite:///relative.db`` or ``sqlite:////absolute.db``: `SQLiteStore`, one
  file shared by the processes of one machine;
- ``redis://host:port/db``, ``rediss://...`` or ``unix:///path/redis.sock?db=0``:
  `RedisStore`, shared by many hosts (``pip install 'langchain-tokencal[redis]'``).

`default_store_url` gives the per-user file the ``tokencal`` command uses;
`redact_url` shows a store URL without its passwords, as every message does.
"""

from langchain_tokencal.storage._base import (
    USAGE_FIELDS,
    CursorExpiredError,
    Snapshot,
    Store,
    StoreError,
    check_model,
    supports_snapshots,
)
from langchain_tokencal.storage._memory import MemoryStore
from langchain_tokencal.storage._redact import redact_url
from langchain_tokencal.storage._redis import RedisStore
from langchain_tokencal.storage._sqlite import SQLiteStore
from langchain_tokencal.storage._urls import default_store_url, open_store

__all__ = [
    "USAGE_FIELDS",
    "CursorExpiredError",
    "MemoryStore",
    "RedisStore",
    "SQLiteStore",
    "Snapshot",
    "Store",
    "StoreError",
    "check_model",
    "default_store_url",
    "open_store",
    "redact_url",
    "supports_snapshots",
]
