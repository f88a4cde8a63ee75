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
		r, err := s.TakeRate(ctx, tenancy.RateRequest{Tenant: "a", Resource: tenancy.ResourceSnapshots, Now: storetest.T0.Add(time.Duration(i) * 10 * time.Minute), DefaultLimit: 10})
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
	u, err := s.Usage(ctx, "a", storetest.T0, tenancy.DefaultLimits())
	require.NoError(t, err)
	assert.Equal(t, int64(10), u.SnapshotsLastMinute, "usage reads the same clock")
}

// Every key of a tenant carries the tenant's hash tag; only the tenant
// index of the audit log is global.
func TestKeysHashTaggedPerTenant(t *testing.T) {
	srv := testenv.Redis(t)
	s := newStore(t, srv)
	ctx := context.Background()
	for _, tenant := range []tenancy.ID{"acme", "globex"} {
		_, err := s.AcquireSlot(ctx, tenancy.SlotRequest{Tenant: tenant, PreviewID: "p", Now: time.Now(), Lease: time.Minute, DefaultLimit: 5})
		require.NoError(t, err)
		_, err = s.TakeRate(ctx, tenancy.RateRequest{Tenant: tenant, Resource: tenancy.ResourceSnapshots, Now: time.Now(), DefaultLimit: 5})
		require.NoError(t, err)
		r, err := s.Reserve(ctx, tenancy.ReserveRequest{Tenant: tenant, ReservationID: "r", Amount: 5, Now: time.Now(), TTL: time.Minute, DefaultBudget: 10})
		require.NoError(t, err)
		require.True(t, r.Reserved)
		_, err = s.Settle(ctx, tenancy.SettleRequest{Tenant: tenant, ReservationID: "r", Actual: 1, Now: time.Now()})
		require.NoError(t, err)
		one := int64(1)
		_, err = s.UpdateLimits(ctx, tenancy.UpdateRequest{Tenant: tenant, Defaults: tenancy.DefaultLimits(), Patch: tenancy.LimitsPatch{ActivePreviews: &one}, ChangedBy: "t", Now: time.Now()})
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
	q, err := tenancy.NewQuotas(s)
	require.NoError(t, err)
	_, err = q.AcquirePreview(tenancy.WithTenant(context.Background(), "acme"), "p")
	var un *tenancy.UnavailableError
	assert.ErrorAs(t, err, &un, "fails closed")
}
