"""The Redis backend of `langchain_tokencal.storage`: one log shared by many hosts.

Layout, under a key prefix (``?prefix=``, default ``tokencal:``):

```
{prefix}events           STREAM  every event, field ``e`` = `encode_event`'s JSON;
                                  the entry id (``<ms>-<seq>``) is the cursor
{prefix}ids:{model}      LIST    that model's entry ids, oldest first
{prefix}event-models     SET     models that have events
{prefix}usage:{model}    HASH    `USAGE_FIELDS` -> integer sum (HINCRBY)
{prefix}usage-models     SET     models that have usage
{prefix}origins          HASH    origin -> the highest seq applied from it
{prefix}snapshot         HASH    model -> its learned state (JSON), the latest snapshot
{prefix}marks            HASH    ``snapshot``: the id it covers; ``pruned``: the
                                  highest id deleted behind it
{prefix}lease:{name}     STRING  the owner of a lease, expiring (PX)
```

A snapshot is written by one script that checks it still extends the
snapshot it was built on (compare and set), replaces it and deletes the
events the previous snapshot covered, from the stream and the id lists.

A batch (events and usage increments) is applied by one Lua script that
checks every key's type before writing anything, and skips each item whose
``(origin, seq)`` is not above its origin's mark: retried, partial or
repeated pushes change nothing.

One stream keeps a single order across all writers, so a cursor is one id.
Compaction needs each model's oldest entries: the per-model id lists give them
without scanning the stream. Appends and compaction are Lua scripts, so each
is atomic; the compaction script derives per-model key names from the
``event-models`` set, which standalone Redis allows (Redis Cluster would need
every key on one slot; it is not supported). ``XDEL`` keeps the stream's last
id, so ids keep growing after compaction and old cursors stay valid.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Final, TypeVar
from urllib.parse import parse_qsl, urlencode

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
)
from langchain_tokencal.storage._redact import redact_url
from langchain_tokencal.storage._redis_scripts import (
    APPLY_LUA,
    COMPACT_LUA,
    LEASE_LUA,
    SNAPSHOT_LUA,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    import redis

    from langchain_tokencal.events import LearnEvent

__all__ = ["RedisStore"]


_T = TypeVar("_T")

DEFAULT_PREFIX: Final = "tokencal:"
INSTALL_LINE: Final = "pip install 'langchain-tokencal[redis]'"
_PAGE: Final = 1000  # entries per XRANGE call: bounded replies, few round trips
_MAX_SEQ: Final = 2**64 - 1
_CURSOR: Final = re.compile(r"(\d+)-(\d+)")


class RedisStore(StoreBase):
    """A store in Redis that processes on many hosts may share.

    Accepts ``redis://[user:password@]host:port/db``, ``rediss://`` (TLS) and
    ``unix:///path/redis.sock?db=0``, plus ``prefix=`` (key prefix) and
    redis-py's own query options such as ``socket_timeout=``. Every call has
    a socket timeout (``timeout`` seconds unless the URL sets one) and no
    retry, so an unreachable server fails fast with `StoreError` instead of
    hanging. Appends are acknowledged by the server; they survive a server
    restart only as far as its persistence (RDB/AOF) is configured to keep
    them. `url` has any password replaced by ``***``. Thread-safe (redis-py's
    connection pool).

    Args:
        url: The server and options.
        timeout: Seconds to connect and to wait for each reply.

    Raises:
        ConfigError: The URL is malformed.
        StoreError: The ``redis`` package is missing (the message gives the
            install line) or the server cannot be reached.

    Example:
        ```python
        from langchain_tokencal.storage import RedisStore

        store = RedisStore("redis://localhost:6379/0?prefix=myapp:tokencal:")
        events, cursor = store.read()
        store.close()
        ```
    """

    def __init__(self, url: str, *, timeout: float = 2.0) -> None:
        """Connect to the server at ``url`` and check it answers."""
        try:
            import redis  # noqa: PLC0415 - optional dependency, imported when used
            from redis.backoff import NoBackoff  # noqa: PLC0415
            from redis.retry import Retry  # noqa: PLC0415
        except ImportError as err:
            msg = f"RedisStore needs the redis package: {INSTALL_LINE}"
            raise StoreError(msg) from err
        self.url = redact_url(url)
        server_url, self.prefix = _split_prefix(url)
        self._errors: tuple[type[BaseException], ...] = (redis.RedisError, OSError)
        try:
            # Retries off: a dead server must fail within one timeout, and the
            # caller decides when to try again.
            self._client: redis.Redis | None = redis.Redis.from_url(
                server_url,
                socket_timeout=timeout,
                socket_connect_timeout=timeout,
                retry=Retry(NoBackoff(), 0),
            )
        except ValueError as err:
            msg = f"invalid Redis URL {self.url!r}: {err}"
            raise ConfigError(msg) from err
        self._stream = f"{self.prefix}events"
        self._event_models = f"{self.prefix}event-models"
        self._usage_models = f"{self.prefix}usage-models"
        self._origins = f"{self.prefix}origins"
        self._apply = self._client.register_script(APPLY_LUA)
        self._compact = self._client.register_script(COMPACT_LUA)
        self._snapshot = self._client.register_script(SNAPSHOT_LUA)
        self._lease = self._client.register_script(LEASE_LUA)
        self._snapshot_key = f"{self.prefix}snapshot"
        self._marks = f"{self.prefix}marks"
        try:
            self._run("connect to", lambda client: client.ping())
        except StoreError:
            self.close()
            raise

    def apply_batch(
        self, events: Sequence[LearnEvent], usage: Sequence[UsageDelta] = ()
    ) -> None:
        """Append events and add usage with one atomic script, once per identity."""
        if not events and not usage:
            return
        keys = [self._stream, self._event_models, self._usage_models, self._origins]
        args: list[str | int] = [len(events), len(usage), len(USAGE_FIELDS)]
        args += USAGE_FIELDS
        for event in events:
            check_model(event.model)
            keys.append(f"{self.prefix}ids:{event.model}")
            args += (event.model, encode_event(event), event.origin, event.seq)
        for delta in usage:
            check_model(delta.model)
            keys.append(f"{self.prefix}usage:{delta.model}")
            args += (delta.model, delta.origin, delta.seq, *check_totals(delta.totals))
        self._run("append events to", lambda _: self._apply(keys, args))

    def read(self, after: str = "") -> tuple[list[LearnEvent], str]:
        """Return the stream entries after id ``after`` (see `Store.read`)."""
        start = _next_id(after, self.url) if after else "-"
        rows: list[tuple[str, bytes | str | None]] = []

        def page(client: redis.Redis) -> list[tuple[str, bytes | str | None]]:
            entries = client.xrange(self._stream, min=start, max="+", count=_PAGE)
            return [
                (_text(entry_id or b""), (fields or {}).get(b"e"))
                for entry_id, fields in entries or ()
            ]

        while True:
            entries = self._run("read", page)
            rows += entries
            if len(entries) < _PAGE:
                break
            start = _next_id(rows[-1][0], self.url)
        if after:
            # Checked after the read: a deletion past ``after`` before it
            # had raised the mark first (one script does both).
            pruned = self._run("read", lambda c: c.hget(self._marks, "pruned"))
            if pruned and _order(after, self.url) < _order(_text(pruned), self.url):
                msg = f"cursor {after} of {self.url} is behind its compacted events"
                raise CursorExpiredError(msg)
        if not rows:
            return [], after
        return decode_rows(rows, self.url), rows[-1][0]

    def add_usage(self, model: str, totals: Sequence[int]) -> None:
        """HINCRBY each nonzero sum in one MULTI/EXEC (see `Store.add_usage`)."""
        model = check_model(model)
        values = check_totals(totals)
        key = f"{self.prefix}usage:{model}"

        def add(client: redis.Redis) -> None:
            pipe = client.pipeline(transaction=True)
            pipe.sadd(self._usage_models, model)
            for field, value in zip(USAGE_FIELDS, values, strict=True):
                if value:
                    pipe.hincrby(key, field, value)
            pipe.execute()

        self._run("add usage to", add)

    def usage(self) -> dict[str, list[int]]:
        """Return every model's usage totals (see `Store.usage`)."""

        def fetch(client: redis.Redis) -> dict[str, list[int]]:
            members = client.smembers(self._usage_models)
            models = sorted(_text(m) for m in members)
            pipe = client.pipeline(transaction=False)
            for model in models:
                pipe.hmget(f"{self.prefix}usage:{model}", list(USAGE_FIELDS))
            sums = pipe.execute()
            return {
                model: [int(v) if v is not None else 0 for v in row]
                for model, row in zip(models, sums, strict=True)
            }

        return self._run("read usage from", fetch)

    def compact(self, keep: int) -> int:
        """Delete all but each model's newest ``keep`` entries, atomically."""
        keep = check_keep(keep)
        ids_prefix = f"{self.prefix}ids:"
        deleted = self._run(
            "compact",
            lambda _: self._compact(
                [self._stream, self._event_models], [keep, ids_prefix]
            ),
        )
        return int(deleted)

    def read_snapshot(self) -> Snapshot | None:
        """The latest snapshot, read in one MULTI (see `StoreBase.read_snapshot`)."""

        def fetch(client: redis.Redis) -> tuple[Any, Any]:
            pipe = client.pipeline(transaction=True)
            pipe.hget(self._marks, "snapshot")
            pipe.hgetall(self._snapshot_key)
            cursor, states = pipe.execute()
            return cursor, states

        cursor, states = self._run("read the snapshot of", fetch)
        if not cursor:
            return None
        return Snapshot(_text(cursor), decode_states(states.items(), self.url))

    def write_snapshot(self, snapshot: Snapshot, base: str) -> int | None:
        """Replace the snapshot with one script (see `StoreBase.write_snapshot`)."""
        _order(snapshot.cursor, self.url)
        if base:
            _order(base, self.url)
        args: list[str] = [base, snapshot.cursor, f"{self.prefix}ids:"]
        for model, state in sorted(snapshot.states.items()):
            args += (check_model(model), state)
        keys = [self._stream, self._event_models, self._snapshot_key, self._marks]
        deleted = int(
            self._run("write a snapshot to", lambda _: self._snapshot(keys, args))
        )
        return None if deleted < 0 else deleted

    def applied(self, origin: str) -> int:
        """The origin's mark in the ``origins`` hash (see `StoreBase.applied`)."""
        mark = self._run(
            "read the origins of", lambda client: client.hget(self._origins, origin)
        )
        return int(mark) if mark else 0

    def take_lease(self, name: str, owner: str, seconds: float) -> bool:
        """Take or renew a lease key with an expiry (see `StoreBase.take_lease`)."""
        key = f"{self.prefix}lease:{name}"
        millis = max(int(seconds * 1000), 1)
        held = self._run(
            "take a lease in", lambda _: self._lease([key], [owner, millis])
        )
        return bool(held)

    def close(self) -> None:
        """Close the connection pool; later calls raise `StoreError`."""
        client, self._client = self._client, None
        if client is not None:
            client.close()

    def _run(self, what: str, op: Callable[[redis.Redis], _T]) -> _T:
        """Run ``op``, turning connection and server errors into `StoreError`."""
        client = self._client
        if client is None:
            raise closed_error(what, self.url)
        try:
            return op(client)
        except self._errors as err:
            msg = f"cannot {what} the Redis store {self.url}: {err}"
            raise StoreError(msg) from err
        except UnicodeEncodeError as err:
            msg = (
                f"cannot {what} the Redis store {self.url}: "
                f"a value is not UTF-8 text ({err})"
            )
            raise ConfigError(msg) from err


def _split_prefix(url: str) -> tuple[str, str]:
    """Remove ``prefix=`` (ours, unknown to redis-py) from the query."""
    base, _, query = url.partition("?")
    pairs = parse_qsl(query, keep_blank_values=True)
    prefixes = [v for k, v in pairs if k == "prefix"]
    prefix = prefixes[-1] if prefixes else DEFAULT_PREFIX
    if not prefix:
        msg = (
            f"prefix= must not be empty in {redact_url(url)!r}; "
            f"omit it for {DEFAULT_PREFIX!r}."
        )
        raise ConfigError(msg)
    rest = urlencode([(k, v) for k, v in pairs if k != "prefix"])
    return (base + "?" + rest if rest else base), prefix


def _order(cursor: str, url: str) -> tuple[int, int]:
    """A stream id as a sortable pair."""
    match = _CURSOR.fullmatch(cursor)
    if match is None:
        raise cursor_error(cursor, url)
    return int(match[1]), int(match[2])


def _next_id(cursor: str, url: str) -> str:
    """The smallest stream id after ``cursor`` (XRANGE's ``(`` needs Redis 6.2)."""
    match = _CURSOR.fullmatch(cursor)
    if match is None:
        raise cursor_error(cursor, url)
    ms, seq = int(match[1]), int(match[2])
    return f"{ms + 1}-0" if seq >= _MAX_SEQ else f"{ms}-{seq + 1}"


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
