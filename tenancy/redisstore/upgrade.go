package redisstore

import (
	"context"
	"errors"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

// layoutNamed marks a key space upgraded by UpgradeFixedQuotas.
const layoutNamed = "named"

// UpgradeFixedQuotas moves the state that versions before named quotas
// kept for their three fixed quotas to the layout of named quotas, under
// the names those quotas carry now:
//
//	slots                     -> slots:active_previews
//	llm:res, llm:spent        -> budget:llm_budget:res, budget:llm_budget:spent
//	limits field snapshots_per_minute      -> snapshots
//	limits field llm_monthly_budget_micros -> llm_budget
//	audit entries of those two fields      -> the quota names
//	limits above tenancy.MaxLimit          -> tenancy.Unlimited
//
// (rate:snapshots and the active_previews field keep their names). A
// service that used the fixed quotas declares active_previews
// (concurrency), snapshots (rate) and llm_budget (budget) to find its data
// again. Each tenant is moved by one script, merging into keys a newer
// process may already have written; the upgrade is idempotent and records
// that it ran (key <prefix>quota:layout), so later calls return at once
// with 0. Run it once the processes of the old version have stopped, before
// traffic reaches the new ones. It returns the number of tenants whose
// keys it changed.
func (s *Store) UpgradeFixedQuotas(ctx context.Context) (int, error) {
	marker := s.prefix + "quota:layout"
	done, err := s.rdb.Get(ctx, marker).Result()
	switch {
	case err == nil && done == layoutNamed:
		return 0, nil
	case err != nil && !errors.Is(err, redis.Nil):
		return 0, err
	}
	tenants := map[string]bool{}
	for _, suffix := range []string{"slots", "limits", "llm:res", "llm:spent", "audit"} {
		if err := s.scanTenants(ctx, globEscape(s.prefix)+"{t:*}:"+suffix, tenants); err != nil {
			return 0, err
		}
	}
	moved := 0
	for t := range tenants {
		k := func(name string) string { return s.prefix + "{t:" + t + "}:" + name }
		n, err := upgradeScript.Run(ctx, s.rdb, []string{k("limits"), k("slots"), k("slots:active_previews"), k("llm:res"),
			k("budget:llm_budget:res"), k("llm:spent"), k("budget:llm_budget:spent"), k("audit")}).Int()
		if err != nil {
			return moved, err
		}
		moved += n
	}
	return moved, s.rdb.Set(ctx, marker, layoutNamed, 0).Err()
}

// scanTenants adds the tenant of every key matching pattern, on every
// master of a cluster or shard of a ring (which run in parallel).
func (s *Store) scanTenants(ctx context.Context, pattern string, into map[string]bool) error {
	var mu sync.Mutex
	scan := func(ctx context.Context, c redis.Cmdable) error {
		iter := c.Scan(ctx, 0, pattern, 500).Iterator()
		for iter.Next(ctx) {
			rest := strings.TrimPrefix(iter.Val(), s.prefix+"{t:")
			if t, _, ok := strings.Cut(rest, "}:"); ok {
				mu.Lock()
				into[t] = true
				mu.Unlock()
			}
		}
		return iter.Err()
	}
	each := func(ctx context.Context, c *redis.Client) error { return scan(ctx, c) }
	switch c := s.rdb.(type) {
	case *redis.ClusterClient:
		return c.ForEachMaster(ctx, each)
	case *redis.Ring:
		return c.ForEachShard(ctx, each)
	}
	return scan(ctx, s.rdb)
}

// globEscape escapes the glob characters of a Redis SCAN pattern.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// KEYS: limits, old slots, new slots, old reservations, new reservations,
// old spend, new spend, audit. Returns 1 when it changed anything.
var upgradeScript = redis.NewScript(`
local changed = 0
for _, r in ipairs({{'snapshots_per_minute', 'snapshots'}, {'llm_monthly_budget_micros', 'llm_budget'}}) do
  local v = redis.call('HGET', KEYS[1], r[1])
  if v then
    redis.call('HSETNX', KEYS[1], r[2], v)
    redis.call('HDEL', KEYS[1], r[1])
    changed = 1
  end
end
-- Overrides above 2^53-1 (tenancy.MaxLimit), which versions before named
-- quotas accepted, carry over as -1 (unlimited): Lua reads them as doubles.
for _, f in ipairs({'active_previews', 'snapshots', 'llm_budget'}) do
  local v = tonumber(redis.call('HGET', KEYS[1], f))
  if v and v > 9007199254740991 then
    redis.call('HSET', KEYS[1], f, '-1')
    changed = 1
  end
end
local function move(old, new, kind)
  if redis.call('EXISTS', old) == 0 then return end
  changed = 1
  if redis.call('EXISTS', new) == 0 then
    redis.call('RENAME', old, new)
    return
  end
  local ttl = redis.call('PTTL', old)
  if kind == 'zset' then
    local all = redis.call('ZRANGE', old, 0, -1, 'WITHSCORES')
    for i = 1, #all, 2 do
      local cur = redis.call('ZSCORE', new, all[i])
      if (not cur) or tonumber(cur) < tonumber(all[i + 1]) then redis.call('ZADD', new, all[i + 1], all[i]) end
    end
  else
    local all = redis.call('HGETALL', old)
    for i = 1, #all, 2 do
      if kind == 'sum' then redis.call('HINCRBY', new, all[i], all[i + 1]) else redis.call('HSETNX', new, all[i], all[i + 1]) end
    end
  end
  local nttl = redis.call('PTTL', new)
  if nttl >= 0 and ttl > nttl then redis.call('PEXPIRE', new, ttl) end
  redis.call('DEL', old)
end
move(KEYS[2], KEYS[3], 'zset')
move(KEYS[4], KEYS[5], 'hash')
move(KEYS[6], KEYS[7], 'sum')
local items = redis.call('LRANGE', KEYS[8], 0, -1)
for i, it in ipairs(items) do
  local new = string.gsub(it, '"f":"snapshots_per_minute"', '"f":"snapshots"', 1)
  new = string.gsub(new, '"f":"llm_monthly_budget_micros"', '"f":"llm_budget"', 1)
  if new ~= it then
    redis.call('LSET', KEYS[8], i - 1, new)
    changed = 1
  end
end
return changed
`)
