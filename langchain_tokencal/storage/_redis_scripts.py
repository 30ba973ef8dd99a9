"""The Lua scripts of the Redis backend: each one atomic step on the server.

Redis runs a script alone, so each of them is all or nothing against every
other client, but it does not roll a script back when a command fails
midway: each script checks its keys' types before its first write.
"""

from __future__ import annotations

from typing import Final

__all__ = ["APPLY_LUA", "COMPACT_LUA", "LEASE_LUA", "SNAPSHOT_LUA"]

# One batch, all or nothing, each identity once. Redis does not roll a script
# back when a command fails midway, so every key's type (and every usage
# field's value) is checked before the first write: a key of the wrong type
# fails the whole batch with nothing written.
# KEYS: stream, event-models, usage-models, origins, then one ids list per
#   event, then one usage hash per increment.
# ARGV: events, increments, then the usage field names, then per event
#   model, line, origin, seq; per increment model, origin, seq, then one value
#   per field.
APPLY_LUA: Final = """
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
COMPACT_LUA: Final = """
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


# KEYS: stream, event-models, snapshot, marks. ARGV: base cursor, new cursor,
#   ids-key prefix, then model and state pairs.
SNAPSHOT_LUA: Final = """
local function kind_of(key)
  local t = redis.call('TYPE', key)
  return t['ok'] or t
end
local wants = {'stream', 'set', 'hash', 'hash'}
for i = 1, 4 do
  local t = kind_of(KEYS[i])
  if t ~= 'none' and t ~= wants[i] then
    return redis.error_reply('WRONGTYPE ' .. KEYS[i] .. ' holds a ' .. t ..
      ', not a ' .. wants[i] .. '; nothing was written')
  end
end
local function parse(id)
  local ms, sq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(sq)
end
local function at_most(id, ms, sq)
  local a, b = parse(id)
  return a < ms or (a == ms and b <= sq)
end
local base = ARGV[1]
if (redis.call('HGET', KEYS[4], 'snapshot') or '') ~= base then return -1 end
local deleted = 0
if base ~= '' then
  local ms, sq = parse(base)
  for _, model in ipairs(redis.call('SMEMBERS', KEYS[2])) do
    local ids = ARGV[3] .. model
    while true do
      local head = redis.call('LRANGE', ids, 0, 999)
      local k = 0
      while k < #head and at_most(head[k + 1], ms, sq) do k = k + 1 end
      if k > 0 then
        deleted = deleted + redis.call('XDEL', KEYS[1], unpack(head, 1, k))
        redis.call('LTRIM', ids, k, -1)
      end
      if k < 1000 then break end
    end
    if redis.call('LLEN', ids) == 0 then
      redis.call('DEL', ids)
      redis.call('SREM', KEYS[2], model)
    end
  end
end
redis.call('DEL', KEYS[3])
for i = 4, #ARGV, 2 do redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 1]) end
local pruned = redis.call('HGET', KEYS[4], 'pruned') or ''
if base ~= '' and (pruned == '' or at_most(pruned, parse(base))) then
  pruned = base
end
redis.call('HSET', KEYS[4], 'snapshot', ARGV[2], 'pruned', pruned)
return deleted
"""

# KEYS: the lease. ARGV: owner, milliseconds.
LEASE_LUA: Final = """
local holder = redis.call('GET', KEYS[1])
if holder == false or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""
