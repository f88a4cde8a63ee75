package redisstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening/internal/testenv"
	"github.com/systembuilderhub/hardening/tenancy"
	"github.com/systembuilderhub/hardening/tenancy/redisstore"
	"github.com/systembuilderhub/hardening/tenancy/storetest"
)

// BenchmarkDecision measures each quota decision (one EVALSHA) against a
// bare INCR on the same server in the same run. Point REDIS_URL at a real
// server for meaningful numbers:
//
//	REDIS_URL=redis://127.0.0.1:6379/0 go test ./tenancy/redisstore -run '^$' -bench Decision -benchmem
func BenchmarkDecision(b *testing.B) {
	s, incr := benchStore(b)
	b.Run("baseline_incr", func(b *testing.B) {
		for b.Loop() {
			if err := incr(); err != nil {
				b.Fatal(err)
			}
		}
	})
	storetest.BenchDecisions(b, s, time.Time{})
}

// BenchmarkRatio interleaves batches of bare INCRs and of decisions
// (storetest.Ratio), so both see the same machine load, and reports the decision
// rate as a fraction of the INCR rate (rate-ratio; 1.0 = as fast as INCR).
//
//	REDIS_URL=redis://127.0.0.1:6379/0 go test ./tenancy/redisstore -run '^$' -bench Ratio -benchmem
func BenchmarkRatio(b *testing.B) {
	s, incr := benchStore(b)
	storetest.BenchRatio(b, s, time.Time{}, incr)
}

// benchStore opens a store on the test server and returns it with the
// baseline: one INCR on the same server.
func benchStore(b *testing.B) (*redisstore.Store, func() error) {
	srv := testenv.Redis(b)
	s, err := redisstore.New(srv.Client, redisstore.WithPrefix(srv.Prefix))
	require.NoError(b, err)
	return s, func() error { return srv.Client.Incr(context.Background(), srv.Prefix+"bench").Err() }
}

// BenchmarkAllowRatio measures Quotas.Allow on Redis (one EVALSHA of the
// GCRA script, Redis TIME as the clock) against a bare INCR on the same
// server, interleaved in batches (storetest.Ratio), and reports rate-ratio:
// the Allow rate as a fraction of the INCR rate (1.0 = as fast as INCR).
//
//	REDIS_URL=redis://127.0.0.1:6379/0 go test ./tenancy/redisstore -run '^$' -bench AllowRatio -count 5
func BenchmarkAllowRatio(b *testing.B) {
	s, incr := benchStore(b)
	q, err := tenancy.NewQuotas(s, tenancy.Rate("orders", tenancy.MaxLimit, time.Minute))
	require.NoError(b, err)
	ctx := tenancy.WithTenant(context.Background(), "bench")
	storetest.Ratio(b, incr, func() error {
		_, err := q.Allow(ctx, "orders")
		return err
	})
}
