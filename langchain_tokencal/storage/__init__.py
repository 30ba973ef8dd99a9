"""Where learned knowledge and usage totals persist: memory, SQLite or Redis.

A store keeps two things (see `langchain_tokencal.events`):

- an append-only log of `LearnEvent` records, read back in one order across
  all writers from a cursor, and compacted to the newest events per model;
- per-model usage sums (`USAGE_FIELDS`), incremented atomically.

Nothing else is written: no prompt text, no environment, no file paths.

- ``None`` or ``memory://``: `MemoryStore`, this process only;
- ``sqlite:///relative.db`` or ``sqlite:////absolute.db``: `SQLiteStore`, one
  file shared by the processes of one machine;
- ``redis://host:port/db``, ``rediss://...`` or ``unix:///path/redis.sock?db=0``:
  `RedisStore`, shared by many hosts (``pip install 'langchain-tokencal[redis]'``).

`default_store_url` gives the per-user file the ``tokencal`` command uses;
`redact_url` shows a store URL without its passwords, as every message does.
"""

from langchain_tokencal.storage._base import USAGE_FIELDS, Store, StoreError
from langchain_tokencal.storage._memory import MemoryStore
from langchain_tokencal.storage._redact import redact_url
from langchain_tokencal.storage._redis import RedisStore
from langchain_tokencal.storage._sqlite import SQLiteStore
from langchain_tokencal.storage._urls import default_store_url, open_store

__all__ = [
    "USAGE_FIELDS",
    "MemoryStore",
    "RedisStore",
    "SQLiteStore",
    "Store",
    "StoreError",
    "default_store_url",
    "open_store",
    "redact_url",
]
