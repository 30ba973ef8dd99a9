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
```

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
from typing import TYPE_CHECKING, Final, TypeVar
from urllib.parse import parse_qsl, urlencode

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
)
from langchain_tokencal.storage._redact import redact_url

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

# One batch, all or nothing, each identity once. Redis does not roll a script
# back when a command fails midway, so every key's type (and every usage
# field's value) is checked before the first write: a key of the wrong type
# fails the whole batch with nothing written.
# KEYS: stream, event-models, usage-models, origins, then one ids list per
#   event, then one usage hash per increment.
# ARGV: events, increments, then the usage field names, then per event
#   model, line, origin, seq; per increment model, origin, seq, then one value
#   per field.
_APPLY_LUA: Final = """
local ne, nu, nf = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local fields = {}
for f = 1, nf do fields[f] = ARGV[3 + f] end
local function kind_of(key)
  local t = redis.call('TYPE', key)
  return t['ok'] or t
end
local wants = {{KEYS[1], 'stream'}, {KEYS[2], 'set'}, {KEYS[3], 'set'},
  {KEYS[4], 'hash'}}
for i = 1, ne do wants[#wants + 1] = {KEYS[4 + i], 'list'} end
for i = 1, nu do wants[#wants + 1] = {KEYS[4 + ne + i], 'hash'} end
for _, w in ipairs(wants) do
  local t = kind_of(w[1])
  if t ~= 'none' and t ~= w[2] then
    return redis.error_reply('WRONGTYPE ' .. w[1] .. ' holds a ' .. t ..
      ', not a ' .. w[2] .. '; nothing was written')
  end
end
for i = 1, nu do
  for _, v in ipairs(redis.call('HMGET', KEYS[4 + ne + i], unpack(fields))) do
    if v and not string.match(v, '^-?%d+$') then
      return redis.error_reply('usage hash ' .. KEYS[4 + ne + i] ..
        ' holds a value that is not an integer; nothing was written')
    end
  end
end
-- Each item is fresh when its seq is above its origin's mark from before
-- this batch (and not a second copy within it).
local before, marks, seen = {}, {}, {}
local function fresh(origin, seq)
  if seq <= 0 then return true end
  if before[origin] == nil then
    before[origin] = tonumber(redis.call('HGET', KEYS[4], origin) or '0')
  end
  local key = origin .. '\0' .. seq
  if seq <= before[origin] or seen[key] then return false end
  seen[key] = true
  if (marks[origin] or 0) < seq then marks[origin] = seq end
  return true
end
local a, added = 4 + nf, 0
for i = 1, ne do
  local model, line, origin, seq = ARGV[a], ARGV[a + 1], ARGV[a + 2],
    tonumber(ARGV[a + 3])
  a = a + 4
  if fresh(origin, seq) then
    local id = redis.call('XADD', KEYS[1], '*', 'e', line)
    redis.call('RPUSH', KEYS[4 + i], id)
    redis.call('SADD', KEYS[2], model)
    added = added + 1
  end
end
for i = 1, nu do
  local model, origin, seq = ARGV[a], ARGV[a + 1], tonumber(ARGV[a + 2])
  a = a + 3
  if fresh(origin, seq) then
    redis.call('SADD', KEYS[3], model)
    for f = 1, nf do
      local v = ARGV[a + f - 1]
      if v ~= '0' then redis.call('HINCRBY', KEYS[4 + ne + i], fields[f], v) end
    end
  end
  a = a + nf
end
for origin, seq in pairs(marks) do
  redis.call('HSET', KEYS[4], origin, seq)
end
return added
"""

# KEYS: stream, event-models. ARGV: keep, ids-key prefix.
_COMPACT_LUA: Final = """
local keep = tonumber(ARGV[1])
local deleted = 0
for _, model in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  local ids = ARGV[2] .. model
  local drop = redis.call('LLEN', ids) - keep
  if drop > 0 then
    -- XDEL in chunks: Lua's unpack() has a small stack.
    local first = 0
    while first < drop do
      local last = math.min(first + 999, drop - 1)
      deleted = deleted + redis.call('XDEL', KEYS[1],
        unpack(redis.call('LRANGE', ids, first, last)))
      first = last + 1
    end
    if keep == 0 then
      redis.call('DEL', ids)
      redis.call('SREM', KEYS[2], model)
    else
      redis.call('LTRIM', ids, drop, -1)
    end
  end
end
return deleted
"""


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
        self._apply = self._client.register_script(_APPLY_LUA)
        self._compact = self._client.register_script(_COMPACT_LUA)
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


def _next_id(cursor: str, url: str) -> str:
    """The smallest stream id after ``cursor`` (XRANGE's ``(`` needs Redis 6.2)."""
    match = _CURSOR.fullmatch(cursor)
    if match is None:
        raise cursor_error(cursor, url)
    ms, seq = int(match[1]), int(match[2])
    return f"{ms + 1}-0" if seq >= _MAX_SEQ else f"{ms}-{seq + 1}"


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
