package tenancy_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/systembuilderhub/hardening/tenancy"
	"github.com/systembuilderhub/hardening/tenancy/storetest"
)

// BenchmarkAllow measures Quotas.Allow on the memory store (tenant from the
// context, quota looked up by name, counted, GCRA under the store's lock)
// against golang.org/x/time/rate in the same run: one Limiter (xtimerate)
// and, as a service would use it for per-tenant limits, a Limiter per
// tenant in a map under a mutex (xtimerate_per_tenant), which is what a
// per-tenant quota really is. The ratio sub-benchmarks interleave batches
// of calls of each side (storetest.Ratio) so both see the same machine
// load, and report rate-ratio: the Allow rate as a fraction of the peer's
// (1.0 = as fast). Neither side ever refuses.
//
//	go test ./tenancy -run '^$' -bench Allow -count 5
func BenchmarkAllow(b *testing.B) {
	ctx := tenancy.WithTenant(context.Background(), "acme")
	q, err := tenancy.NewQuotas(tenancy.NewMemoryStore(), tenancy.Rate("orders", tenancy.MaxLimit, time.Minute))
	if err != nil {
		b.Fatal(err)
	}
	allow := func() error {
		_, err := q.Allow(ctx, "orders")
		return err
	}
	lim := rate.NewLimiter(rate.Limit(1e12), 1<<50)
	single := func() error { return limiterAllow(lim) }
	perTenant := &tenantLimiters{m: map[tenancy.ID]*rate.Limiter{}}
	tenantAllow := func() error { return perTenant.allow(ctx) }

	for _, bm := range []struct {
		name string
		fn   func() error
	}{{"xtimerate", single}, {"xtimerate_per_tenant", tenantAllow}, {"quotas_memory", allow}} {
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := bm.fn(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("ratio_xtimerate", func(b *testing.B) { storetest.Ratio(b, single, allow) })
	b.Run("ratio_xtimerate_per_tenant", func(b *testing.B) { storetest.Ratio(b, tenantAllow, allow) })
}

func limiterAllow(l *rate.Limiter) error {
	if !l.Allow() {
		return errors.New("x/time/rate refused")
	}
	return nil
}

// tenantLimiters is per-tenant limiting with x/time/rate: a Limiter per
// tenant of the context.
type tenantLimiters struct {
	mu sync.Mutex
	m  map[tenancy.ID]*rate.Limiter
}

func (t *tenantLimiters) allow(ctx context.Context) error {
	id, ok := tenancy.FromContext(ctx)
	if !ok {
		return tenancy.ErrNoTenant
	}
	t.mu.Lock()
	l := t.m[id]
	if l == nil {
		l = rate.NewLimiter(rate.Limit(1e12), 1<<50)
		t.m[id] = l
	}
	t.mu.Unlock()
	return limiterAllow(l)
}
