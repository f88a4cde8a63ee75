package redisstore

import (
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/systembuilderhub/hardening/tenancy/internal/storekit"
)

// Every decision is one of these scripts: one round trip (EVALSHA), all
// keys of one tenant under the tenant's hash tag. Times: ms for leases and
// reservations (from the caller's clock), µs for the GCRA (Redis TIME
// unless the store was built withRequestTime (tests)).
//
// Lua numbers are doubles: every number a script computes with is an
// integer below 2^53 (limits are at most tenancy.MaxLimit, GCRA spans at
// most storekit.MaxTolerance), and the GCRA works on tat - now, taken from
// the seconds and microseconds of both times, so absolute times never
// pass through a double. Stored counters are returned as Redis strings.

// GCRA, mirroring tenancy.GCRA. KEYS: tat key, limits hash. ARGV: quota,
// default limit, period µs, burst (0 = the limit), then now s and µs
// (absent = Redis TIME). Returns {allowed, limit, remaining when allowed
// else retry_after µs, reset_after µs}. Redis TIME is only read when the
// limit is neither Unlimited nor 0 (it does not change those decisions).
var rateScript = redis.NewScript(tatLua + `
local limit = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or ARGV[2])
if limit == -1 then return {1, -1, 0, 0} end
local period = tonumber(ARGV[3])
if limit <= 0 then return {0, limit, period, 0} end
local burst = tonumber(ARGV[4])
if burst <= 0 then burst = limit end
local interval = math.max(1, math.floor(period / limit))
local tol = math.min(burst * interval, ` + strconv.FormatInt(storekit.MaxTolerance, 10) + `)
local s, us = clock(5)
local d = ahead(s, us)
local diff = tol - interval - d
if diff < 0 then return {0, limit, -diff, d} end
local nd = d + interval
redis.call('SET', KEYS[1], tatAfter(s, us, nd), 'PX', math.ceil(nd / 1000) + 1000)
return {1, limit, math.floor(diff / interval), nd}
`)

// KEYS: tat key, limits hash. ARGV: quota, default limit, then now s and
// µs (absent = Redis TIME). Returns {tat - now µs (>= 0), limit}.
var rateUsedScript = redis.NewScript(tatLua + `
local s, us = clock(3)
local limit = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or ARGV[2])
return {ahead(s, us), limit}
`)

// tatLua reads the clock (ARGV[i], ARGV[i+1] or Redis TIME), how far the
// stored tat (KEYS[1], a decimal string of Unix µs) is ahead of it, and
// formats the tat nd µs after it. While the tat and now are below 2^53 µs
// (until the year 2255) they are exact as doubles and used whole; past
// that, seconds and µs are taken apart so no absolute time goes through a
// double.
const tatLua = `
local function clock(i)
  if ARGV[i] then return tonumber(ARGV[i]), tonumber(ARGV[i + 1]) end
  local t = redis.call('TIME')
  return tonumber(t[1]), tonumber(t[2])
end
local function ahead(s, us)
  local tat = redis.call('GET', KEYS[1])
  if not tat then return 0 end
  local v, now = tonumber(tat), s * 1000000 + us
  if v < 9007199254740992 and now >= 0 and now < 9007199254740992 then return math.max(0, v - now) end
  local n = #tat
  local ts, tus = 0, v
  if n > 6 then ts, tus = tonumber(string.sub(tat, 1, n - 6)), tonumber(string.sub(tat, n - 5)) end
  return math.max(0, (ts - s) * 1000000 + (tus - us))
end
local function tatAfter(s, us, nd)
  local now = s * 1000000 + us
  if now >= 0 and now + nd < 9007199254740992 then return string.format('%d', now + nd) end
  local carry = us + nd % 1000000
  return string.format('%d%06d', s + math.floor(nd / 1000000) + math.floor(carry / 1000000), carry % 1000000)
end
`

// KEYS: slots zset, limits hash. ARGV: now ms, lease end ms, holder, quota,
// default limit. Returns {held, current, limit}.
var acquireScript = redis.NewScript(`
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local limit = tonumber(redis.call('HGET', KEYS[2], ARGV[4]) or ARGV[5])
local held = redis.call('ZSCORE', KEYS[1], ARGV[3])
local cur = redis.call('ZCARD', KEYS[1])
if (not held) and limit ~= -1 and cur >= limit then
  return {0, cur, limit}
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
if not held then cur = cur + 1 end
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIRE', KEYS[1], math.max(1, tonumber(last[2]) - now))
return {1, cur, limit}
`)

// KEYS: slots zset. ARGV: now ms, lease end ms, holder.
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

// outstandingLua sums the amounts of period's open reservations in
// KEYS[1] ("period|amount|expires ms" by id), deleting expired ones when
// purge is true.
const outstandingLua = `
local function outstanding(period, now, purge)
  local all = redis.call('HGETALL', KEYS[1])
  local out = 0
  for i = 1, #all, 2 do
    local p, amount, exp = string.match(all[i + 1], '^([^|]*)|(%d+)|(%d+)$')
    if tonumber(exp) <= now then
      if purge then redis.call('HDEL', KEYS[1], all[i]) end
    elseif p == period then
      out = out + tonumber(amount)
    end
  end
  return out
end
`

// KEYS: reservations hash, spent hash, limits hash. ARGV: id, amount, now
// ms, expiry ms, period, quota, default limit.
// Returns {reserved, limit, spent, outstanding}.
var reserveScript = redis.NewScript(outstandingLua + `
local now = tonumber(ARGV[3])
local limit = tonumber(redis.call('HGET', KEYS[3], ARGV[6]) or ARGV[7])
local out = outstanding(ARGV[5], now, true)
local spent = redis.call('HGET', KEYS[2], ARGV[5]) or '0'
local amount = tonumber(ARGV[2])
if limit ~= -1 and tonumber(spent) + out + amount > limit then
  return {0, limit, spent, out}
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[5] .. '|' .. ARGV[2] .. '|' .. ARGV[4])
local ttl = tonumber(ARGV[4]) - now
if redis.call('PTTL', KEYS[1]) < ttl then
  redis.call('PEXPIRE', KEYS[1], ttl)
end
return {1, limit, spent, out + amount}
`)

// KEYS: reservations hash, spent hash. ARGV: id, actual, now ms, period of
// now, spent hash ttl ms. Returns {found, spent}.
var settleScript = redis.NewScript(`
local v = redis.call('HGET', KEYS[1], ARGV[1])
local found = 0
local period = ARGV[4]
if v then
  redis.call('HDEL', KEYS[1], ARGV[1])
  local p, amount, exp = string.match(v, '^([^|]*)|(%d+)|(%d+)$')
  if tonumber(exp) > tonumber(ARGV[3]) then
    found = 1
    period = p
    redis.call('HINCRBY', KEYS[2], p, ARGV[2])
    redis.call('PEXPIRE', KEYS[2], ARGV[5])
  end
end
return {found, redis.call('HGET', KEYS[2], period) or '0'}
`)

// KEYS: reservations hash, spent hash. ARGV: period, now ms.
// Returns {spent, reserved}.
var budgetUsageScript = redis.NewScript(outstandingLua + `
return {redis.call('HGET', KEYS[2], ARGV[1]) or '0', outstanding(ARGV[1], tonumber(ARGV[2]), false)}
`)

// KEYS: limits hash, audit list. ARGV: triples of quota, default (the old
// value without an override), new value; then one audit entry JSON per
// triple. Each audit item is "<old value>|<entry JSON>". Returns the
// tenant's overrides (HGETALL).
var setLimitsScript = redis.NewScript(`
local n = (#ARGV) / 4
for i = 0, n - 1 do
  local quota, def, new = ARGV[3 * i + 1], ARGV[3 * i + 2], ARGV[3 * i + 3]
  local old = redis.call('HGET', KEYS[1], quota) or def
  redis.call('HSET', KEYS[1], quota, new)
  redis.call('RPUSH', KEYS[2], old .. '|' .. ARGV[3 * n + i + 1])
end
return redis.call('HGETALL', KEYS[1])
`)
