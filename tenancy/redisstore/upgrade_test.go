package redisstore_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening/internal/testenv"
	"github.com/systembuilderhub/hardening/tenancy/redisstore"
	"github.com/systembuilderhub/hardening/tenancy/storetest"
)

// writeFixedQuotas writes storetest.CheckFixedQuotasUpgrade's fixture in
// the key layout of the fixed quotas, as their scripts did.
func writeFixedQuotas(t *testing.T, rdb redis.UniversalClient, prefix string) {
	ctx := context.Background()
	t0 := storetest.T0
	k := func(tenant, name string) string { return prefix + "{t:" + tenant + "}:" + name }
	ms := func(d time.Duration) int64 { return t0.Add(d).UnixMilli() }
	audit := func(old int64, field string, n int64) string {
		return fmt.Sprintf(`%d|{"f":%q,"n":%d,"by":"root","at":%d,"r":"plan"}`, old, field, n, ms(-time.Hour))
	}
	_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, k("acme", "limits"), "active_previews", "7", "llm_monthly_budget_micros", "250000000")
		p.HSet(ctx, k("globex", "limits"), "snapshots_per_minute", "3")
		p.RPush(ctx, k("acme", "audit"), audit(5, "active_previews", 7), audit(100000000, "llm_monthly_budget_micros", 250000000))
		p.RPush(ctx, k("globex", "audit"), audit(10, "snapshots_per_minute", 3))
		p.ZAdd(ctx, prefix+"quota:tenants", redis.Z{Member: "acme"}, redis.Z{Member: "globex"})
		p.ZAdd(ctx, k("acme", "slots"), redis.Z{Score: float64(ms(time.Hour)), Member: "pv_1"}, redis.Z{Score: float64(ms(time.Hour)), Member: "pv_2"})
		p.Set(ctx, k("acme", "rate:snapshots"), strconv.FormatInt(t0.Add(12*time.Second).UnixMicro(), 10), 0)
		p.HSet(ctx, k("acme", "llm:spent"), "2026-03", "1500000", "2026-02", "99")
		p.HSet(ctx, k("acme", "llm:res"), "r1", fmt.Sprintf("2026-03|400000|%d", ms(10*time.Minute)))
		return nil
	})
	require.NoError(t, err)
}

// TestUpgradeFixedQuotas writes the state of the three fixed quotas in
// their old key layout, upgrades, and reads it all back through the named
// quotas active_previews, snapshots and llm_budget.
func TestUpgradeFixedQuotas(t *testing.T) {
	srv := testenv.Redis(t)
	writeFixedQuotas(t, srv.Client, srv.Prefix)
	s := newStore(t, srv, redisstore.WithRequestTime())
	n, err := s.UpgradeFixedQuotas(t.Context())
	require.NoError(t, err)
	assert.Equal(t, 2, n, "both tenants had keys to move")
	storetest.CheckFixedQuotasUpgrade(t, s)

	n, err = s.UpgradeFixedQuotas(t.Context())
	require.NoError(t, err)
	assert.Zero(t, n, "the upgrade ran once")
	for _, old := range []string{"{t:acme}:slots", "{t:acme}:llm:res", "{t:acme}:llm:spent"} {
		assert.Zero(t, srv.Client.Exists(t.Context(), srv.Prefix+old).Val(), "%s is gone", old)
	}
	assert.Equal(t, []any{nil, nil}, srv.Client.HMGet(t.Context(), srv.Prefix+"{t:acme}:limits", "snapshots_per_minute", "llm_monthly_budget_micros").Val())
}

// TestUpgradeFixedQuotasCluster runs the upgrade on a Redis Cluster,
// whose keys spread over several masters.
func TestUpgradeFixedQuotasCluster(t *testing.T) {
	srv := testenv.RedisCluster(t)
	writeFixedQuotas(t, srv.Client, srv.Prefix)
	s, err := redisstore.New(srv.Client, redisstore.WithPrefix(srv.Prefix), redisstore.WithRequestTime())
	require.NoError(t, err)
	n, err := s.UpgradeFixedQuotas(t.Context())
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	storetest.CheckFixedQuotasUpgrade(t, s)
}

// TestUpgradeFixedQuotasMerges: keys a process of the new version wrote
// before the upgrade are merged with the old ones, not overwritten.
func TestUpgradeFixedQuotasMerges(t *testing.T) {
	srv := testenv.Redis(t)
	ctx := t.Context()
	writeFixedQuotas(t, srv.Client, srv.Prefix)
	k := func(name string) string { return srv.Prefix + "{t:acme}:" + name }
	s := newStore(t, srv, redisstore.WithRequestTime())
	_, err := s.AcquireSlot(ctx, storetest.SlotReq("active_previews", "acme", "pv_new", storetest.T0, 5))
	require.NoError(t, err)
	srv.Client.HSet(ctx, k("budget:llm_budget:spent"), "2026-03", "5")
	srv.Client.HSet(ctx, k("limits"), "snapshots", "4")

	n, err := s.UpgradeFixedQuotas(ctx)
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	held, err := s.SlotsHeld(ctx, "acme", "active_previews", storetest.T0)
	require.NoError(t, err)
	assert.Equal(t, int64(3), held, "old and new slots")
	assert.Equal(t, "1500005", srv.Client.HGet(ctx, k("budget:llm_budget:spent"), "2026-03").Val(), "spend adds up")
	assert.Equal(t, "4", srv.Client.HGet(ctx, k("limits"), "snapshots").Val(), "a newer override wins")
	assert.Positive(t, srv.Client.PTTL(ctx, k("slots:active_previews")).Val(), "merged keys keep an expiry")
}

// TestUpgradeOversizedLimits: overrides above tenancy.MaxLimit, which the
// fixed quotas accepted, carry over as unlimited: the scripts read numbers
// as doubles, and 2^63-1 came back as -2^63.
func TestUpgradeOversizedLimits(t *testing.T) {
	srv := testenv.Redis(t)
	require.NoError(t, srv.Client.HSet(t.Context(), srv.Prefix+"{t:huge}:limits", "active_previews", "9223372036854775807",
		"snapshots_per_minute", "9007199254740992", "llm_monthly_budget_micros", "9223372036854775807").Err())
	s := newStore(t, srv, redisstore.WithRequestTime())
	n, err := s.UpgradeFixedQuotas(t.Context())
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	storetest.CheckOversizedLimitsUpgrade(t, s)
}
