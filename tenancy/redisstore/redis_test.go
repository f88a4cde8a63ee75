package redisstore_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/systembuilderhub/hardening/internal/testenv"
	"github.com/systembuilderhub/hardening/tenancy"
	"github.com/systembuilderhub/hardening/tenancy/redisstore"
	"github.com/systembuilderhub/hardening/tenancy/storetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestNewValidates(t *testing.T) {
	_, err := redisstore.New(nil)
	assert.Error(t, err)
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer rdb.Close()
	_, err = redisstore.New(rdb, redisstore.WithPrefix("a{b}:"))
	assert.Error(t, err)
}

// Without WithRequestTime the rate's only clock is Redis TIME: the
// request's Now is ignored, even when it runs ten minutes ahead per call.
func TestRateUsesRedisTime(t *testing.T) {
	srv := testenv.Redis(t)
	if srv.Mini != nil {
		srv.Mini.SetTime(time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC))
	}
	s := newStore(t, srv)
	ctx := context.Background()
	take := func(i int) tenancy.RateResult {
		r, err := s.TakeRate(ctx, storetest.RateReq("snapshots", "a", storetest.T0.Add(time.Duration(i)*10*time.Minute), 10))
		require.NoError(t, err)
		return r
	}
	for i := range 10 {
		require.True(t, take(i).Allowed, "burst %d", i)
	}
	r := take(10)
	assert.False(t, r.Allowed, "the request clock did not refill the bucket")
	assert.Greater(t, r.RetryAfter, time.Duration(0))
	assert.LessOrEqual(t, r.RetryAfter, 6*time.Second)
	if srv.Mini != nil {
		srv.Mini.SetTime(time.Date(2026, 6, 1, 0, 0, 6, 0, time.UTC))
		assert.True(t, take(11).Allowed, "Redis TIME moved on by 60/N seconds")
		assert.False(t, take(12).Allowed)
	}
	used, err := s.RateUsed(ctx, storetest.RateReq("snapshots", "a", storetest.T0, 10))
	require.NoError(t, err)
	assert.Equal(t, int64(10), used, "usage reads the same clock")
}

// Every key of a tenant carries the tenant's hash tag; only the tenant
// index of the audit log is global.
func TestKeysHashTaggedPerTenant(t *testing.T) {
	srv := testenv.Redis(t)
	s := newStore(t, srv)
	ctx := context.Background()
	now := time.Now()
	for _, tenant := range []tenancy.ID{"acme", "globex"} {
		_, err := s.AcquireSlot(ctx, storetest.SlotReq("exports", tenant, "p", now, 5))
		require.NoError(t, err)
		_, err = s.TakeRate(ctx, storetest.RateReq("orders", tenant, now, 5))
		require.NoError(t, err)
		r, err := s.Reserve(ctx, storetest.ReserveReq("credits", tenant, "r", 5, now, 10))
		require.NoError(t, err)
		require.True(t, r.Reserved)
		_, err = s.Settle(ctx, tenancy.SettleRequest{Tenant: tenant, Quota: "credits", ReservationID: "r", Actual: 1, Now: now, Period: tenancy.Monthly.Key(now)})
		require.NoError(t, err)
		_, err = s.SetLimits(ctx, tenancy.SetLimitsRequest{Tenant: tenant, Defaults: tenancy.Limits{"exports": 5}, Set: tenancy.Limits{"exports": 1}, ChangedBy: "t", Now: now})
		require.NoError(t, err)
	}
	keys, err := srv.Client.Keys(ctx, srv.Prefix+"*").Result()
	require.NoError(t, err)
	assert.Len(t, keys, 2*5+1)
	for _, k := range keys {
		rest := strings.TrimPrefix(k, srv.Prefix)
		if rest == "quota:tenants" {
			continue
		}
		assert.True(t, strings.HasPrefix(rest, "{t:acme}:") || strings.HasPrefix(rest, "{t:globex}:"), k)
	}
}

func TestUnreachable(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialTimeout: 200 * time.Millisecond, MaxRetries: -1,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}})
	defer rdb.Close()
	s := newStore(t, &testenv.RedisServer{Client: rdb})
	q, err := tenancy.NewQuotas(s, tenancy.Concurrency("exports", 5, time.Minute))
	require.NoError(t, err)
	_, err = q.Acquire(tenancy.WithTenant(context.Background(), "acme"), "exports", "p")
	var un *tenancy.UnavailableError
	assert.ErrorAs(t, err, &un, "fails closed")
}
