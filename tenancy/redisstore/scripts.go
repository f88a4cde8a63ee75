package redisstore

import "github.com/redis/go-redis/v9"

// Every decision is one of these scripts: one round trip (EVALSHA), all
// keys of one tenant under the tenant's hash tag. Times: ms for leases and
// reservations (from the caller's clock), µs for the GCRA (Redis TIME
// unless the store was built WithRequestTime). Integers beyond 2^31 are
// written with string.format('%d') so Lua's float formatting never loses
// digits.

// KEYS: slots zset, limits hash. ARGV: now ms, lease end ms, preview id,
// default limit.
var acquireScript = redis.NewScript(`
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local limit = tonumber(redis.call('HGET', KEYS[2], 'active_previews') or ARGV[4])
local held = redis.call('ZSCORE', KEYS[1], ARGV[3])
local cur = redis.call('ZCARD', KEYS[1])
if (not held) and cur >= limit then
  return {0, cur, limit}
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
if not held then cur = cur + 1 end
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIRE', KEYS[1], math.max(1, tonumber(last[2]) - now))
return {1, cur, limit}
`)

// KEYS: slots zset. ARGV: now ms, lease end ms, preview id.
var renewScript = redis.NewScript(`
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local held = redis.call('ZSCORE', KEYS[1], ARGV[3])
if held then
  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
  local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
  redis.call('PEXPIRE', KEYS[1], math.max(1, tonumber(last[2]) - now))
end
return {held and 1 or 0, redis.call('ZCARD', KEYS[1])}
`)

// GCRA. KEYS: tat key, limits hash. ARGV: limits field, default limit,
// now µs (empty = Redis TIME), period µs.
// Returns {allowed, limit, remaining, retry_after µs, reset_after µs}.
var rateScript = redis.NewScript(`
local now
if ARGV[3] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
else
  now = tonumber(ARGV[3])
end
local period = tonumber(ARGV[4])
local limit = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or ARGV[2])
if limit <= 0 then
  return {0, 0, 0, period, 0}
end
local interval = math.max(1, math.floor(period / limit))
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local new_tat = tat + interval
local diff = now - (new_tat - limit * interval)
if diff < 0 then
  return {0, limit, 0, -diff, tat - now}
end
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1000)
return {1, limit, math.floor(diff / interval), 0, new_tat - now}
`)

// KEYS: reservations hash, spent hash, limits hash. ARGV: id, amount,
// now ms, expiry ms, month, default budget.
// Returns {reserved, budget, spent, outstanding}.
var reserveScript = redis.NewScript(`
local now = tonumber(ARGV[3])
local budget = tonumber(redis.call('HGET', KEYS[3], 'llm_monthly_budget_micros') or ARGV[6])
local all = redis.call('HGETALL', KEYS[1])
local out = 0
for i = 1, #all, 2 do
  local month, amount, exp = string.match(all[i + 1], '^([^|]*)|(%d+)|(%d+)$')
  if tonumber(exp) <= now then
    redis.call('HDEL', KEYS[1], all[i])
  elseif month == ARGV[5] then
    out = out + tonumber(amount)
  end
end
local spent = tonumber(redis.call('HGET', KEYS[2], ARGV[5]) or '0')
local amount = tonumber(ARGV[2])
if spent + out + amount > budget then
  return {0, budget, spent, out}
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[5] .. '|' .. ARGV[2] .. '|' .. ARGV[4])
local ttl = tonumber(ARGV[4]) - now
if redis.call('PTTL', KEYS[1]) < ttl then
  redis.call('PEXPIRE', KEYS[1], ttl)
end
return {1, budget, spent, out + amount}
`)

// KEYS: reservations hash, spent hash. ARGV: id, actual, now ms, month of
// now, spent hash ttl ms. Returns {found, spent}.
var settleScript = redis.NewScript(`
local v = redis.call('HGET', KEYS[1], ARGV[1])
local found = 0
local month = ARGV[4]
if v then
  redis.call('HDEL', KEYS[1], ARGV[1])
  local m, amount, exp = string.match(v, '^([^|]*)|(%d+)|(%d+)$')
  if tonumber(exp) > tonumber(ARGV[3]) then
    found = 1
    month = m
    redis.call('HINCRBY', KEYS[2], m, ARGV[2])
    redis.call('PEXPIRE', KEYS[2], ARGV[5])
  end
end
return {found, tonumber(redis.call('HGET', KEYS[2], month) or '0')}
`)

// KEYS: limits hash, audit list. ARGV[1..3]: defaults; ARGV[4..6]: new
// values (empty = unchanged); ARGV[7..9]: audit entry JSON per field.
// Each audit item is "<old value>|<entry JSON>". Returns the stored
// overrides.
var updateScript = redis.NewScript(`
local fields = {'active_previews', 'snapshots_per_minute', 'llm_monthly_budget_micros'}
local cur = redis.call('HMGET', KEYS[1], fields[1], fields[2], fields[3])
for i = 1, 3 do
  if ARGV[3 + i] ~= '' then
    local old = cur[i] or ARGV[i]
    redis.call('HSET', KEYS[1], fields[i], ARGV[3 + i])
    redis.call('RPUSH', KEYS[2], old .. '|' .. ARGV[6 + i])
  end
end
return redis.call('HMGET', KEYS[1], fields[1], fields[2], fields[3])
`)

// KEYS: slots zset, tat key, limits hash, spent hash, reservations hash.
// ARGV: now ms, now µs (empty = Redis TIME), month, default rate, period µs.
// Returns {active, tat, now µs, limit, spent, reserved}.
var usageScript = redis.NewScript(`
local now = tonumber(ARGV[1])
local now_us
if ARGV[2] == '' then
  local t = redis.call('TIME')
  now_us = tonumber(t[1]) * 1000000 + tonumber(t[2])
else
  now_us = tonumber(ARGV[2])
end
local active = redis.call('ZCOUNT', KEYS[1], '(' .. ARGV[1], '+inf')
local tat = tonumber(redis.call('GET', KEYS[2]) or '0')
local limit = tonumber(redis.call('HGET', KEYS[3], 'snapshots_per_minute') or ARGV[4])
local spent = tonumber(redis.call('HGET', KEYS[4], ARGV[3]) or '0')
local all = redis.call('HGETALL', KEYS[5])
local out = 0
for i = 1, #all, 2 do
  local month, amount, exp = string.match(all[i + 1], '^([^|]*)|(%d+)|(%d+)$')
  if tonumber(exp) > now and month == ARGV[3] then
    out = out + tonumber(amount)
  end
end
return {active, string.format('%d', tat), string.format('%d', now_us), limit, spent, out}
`)
