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
	srv := testenv.Redis(b)
	s, err := redisstore.New(srv.Client, redisstore.WithPrefix(srv.Prefix))
	require.NoError(b, err)
	ctx := context.Background()
	b.Run("baseline_incr", func(b *testing.B) {
		for b.Loop() {
			if err := srv.Client.Incr(ctx, srv.Prefix+"bench").Err(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("snapshot_rate", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.TakeRate(ctx, tenancy.RateRequest{Tenant: "bench", Resource: tenancy.ResourceSnapshots, DefaultLimit: 1_000_000}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("preview_acquire", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.AcquireSlot(ctx, tenancy.SlotRequest{Tenant: "bench", PreviewID: "p", Now: storetest.T0, Lease: 60e9, DefaultLimit: 5}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("budget_reserve", func(b *testing.B) {
		for b.Loop() {
			r, err := s.Reserve(ctx, tenancy.ReserveRequest{Tenant: "bench", ReservationID: "r", Amount: 1, Now: storetest.T0, TTL: 60e9, DefaultBudget: 1 << 50})
			if err != nil || !r.Reserved {
				b.Fatal(err, r)
			}
			b.StopTimer()
			if _, err := s.Cancel(ctx, "bench", "r"); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
	})
}

// BenchmarkRatio interleaves a bare INCR and one decision in every
// iteration, so both see the same machine load, and reports the decision
// rate as a fraction of the INCR rate (rate-ratio; 1.0 = as fast as INCR).
//
//	REDIS_URL=redis://127.0.0.1:6379/0 go test ./tenancy/redisstore -run '^$' -bench Ratio -benchmem
func BenchmarkRatio(b *testing.B) {
	srv := testenv.Redis(b)
	s, err := redisstore.New(srv.Client, redisstore.WithPrefix(srv.Prefix))
	require.NoError(b, err)
	ctx := context.Background()
	incr := func() error { return srv.Client.Incr(ctx, srv.Prefix+"bench").Err() }
	b.Run("snapshot_rate", func(b *testing.B) {
		ratio(b, incr, func() error {
			_, err := s.TakeRate(ctx, tenancy.RateRequest{Tenant: "bench", Resource: tenancy.ResourceSnapshots, DefaultLimit: 1_000_000})
			return err
		})
	})
	b.Run("preview_acquire", func(b *testing.B) {
		ratio(b, incr, func() error {
			_, err := s.AcquireSlot(ctx, tenancy.SlotRequest{Tenant: "bench", PreviewID: "p", Now: storetest.T0, Lease: 60e9, DefaultLimit: 5})
			return err
		})
	})
}

func ratio(b *testing.B, baseline, decision func() error) {
	var base, dec time.Duration
	for b.Loop() {
		t0 := time.Now()
		if err := baseline(); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if err := decision(); err != nil {
			b.Fatal(err)
		}
		base += t1.Sub(t0)
		dec += time.Since(t1)
	}
	b.ReportMetric(float64(base.Nanoseconds())/float64(b.N), "baseline-ns/op")
	b.ReportMetric(float64(dec.Nanoseconds())/float64(b.N), "decision-ns/op")
	b.ReportMetric(float64(base)/float64(dec), "rate-ratio")
}
