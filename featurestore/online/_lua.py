"""The write-if-newer Lua script of the Redis online store (a module, so it ships with the code)."""

WRITE_IF_NEWER_LUA = """\
-- Write one (entity, view) row only if it is at least as new as the row stored for that view.
-- KEYS[1]  the entity's hash
-- ARGV[1]  the view's timestamp field ("_ts:view")
-- ARGV[2]  the new google.protobuf.Timestamp bytes
-- ARGV[3]  its seconds       ARGV[4]  its nanos
-- ARGV[5]  expiry in Unix ms (event time + TTL + the time rows are kept past it), or "" when
--          the view never expires
-- ARGV[6], ARGV[7], ...  feature field, value bytes pairs
-- Returns 1 when written, 0 when the stored row is newer.
-- A varint as a signed 64-bit integer. A negative one (seconds before 1970) takes ten bytes,
-- its two's complement: it is counted from its complement, exact while |value| < 2^53.
local function varint(s, i)
  local value, complement, mult, n, b = 0, 0, 1, 0, 0
  repeat
    b = string.byte(s, i)
    i = i + 1
    n = n + 1
    if n <= 9 then
      value = value + (b % 128) * mult
      complement = complement + (127 - b % 128) * mult
      mult = mult * 128
    end
  until b < 128
  if n == 10 then
    return -complement - 1, i
  end
  return value, i
end

local function seconds_nanos(s)
  local seconds, nanos, i = 0, 0, 1
  while i <= #s do
    local tag = string.byte(s, i)
    local value
    value, i = varint(s, i + 1)
    if tag == 8 then seconds = value elseif tag == 16 then nanos = value end
  end
  return seconds, nanos
end

local key = KEYS[1]
local existed = redis.call('EXISTS', key) == 1
if existed then
  local stored = redis.call('HGET', key, ARGV[1])
  if stored then
    local seconds, nanos = seconds_nanos(stored)
    local new_seconds, new_nanos = tonumber(ARGV[3]), tonumber(ARGV[4])
    if new_seconds < seconds or (new_seconds == seconds and new_nanos < nanos) then
      return 0
    end
  end
end
redis.call('HSET', key, ARGV[1], ARGV[2], unpack(ARGV, 6))
if ARGV[5] == '' then
  redis.call('PERSIST', key)
else
  -- Views of one entity share the hash: keep the latest expiry of them all, and never add one
  -- to a hash that a view without TTL keeps forever.
  local expire_at = tonumber(ARGV[5])
  local current = existed and redis.call('PEXPIRETIME', key) or -2
  if current == -2 or (current >= 0 and expire_at > current) then
    redis.call('PEXPIREAT', key, expire_at)
  end
end
return 1
"""
