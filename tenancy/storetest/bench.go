package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/systembuilderhub/hardening/tenancy"
)

// BenchDecisions runs one sub-benchmark per kind of decision on s: rate,
// concurrency_acquire and budget_reserve (the cancel that frees the
// reservation again is not timed). rateNow is the Now of the rate
// requests: zero for a store on its server's clock. The caller runs its
// baseline (the bare round trip the decision is built from) beside them.
func BenchDecisions(b *testing.B, s tenancy.Store, rateNow time.Time) {
	ctx := context.Background()
	b.Run("rate", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.TakeRate(ctx, RateReq("bench", "bench", rateNow, 1_000_000)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("concurrency_acquire", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.AcquireSlot(ctx, SlotReq("bench", "bench", "p", T0, 5)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("budget_reserve", func(b *testing.B) {
		for b.Loop() {
			r, err := s.Reserve(ctx, ReserveReq("bench", "bench", "r", 1, T0, 1<<50))
			if err != nil || !r.Reserved {
				b.Fatal(err, r)
			}
			b.StopTimer()
			if _, err := s.Cancel(ctx, "bench", "bench", "r"); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
	})
}

// BenchRatio runs the rate and concurrency decisions on s, each
// interleaved with one call of baseline in every iteration so both see the
// same machine load, and reports the decision rate as a fraction of the
// baseline's (rate-ratio; 1.0 = as fast as the baseline) beside both
// latencies.
func BenchRatio(b *testing.B, s tenancy.Store, rateNow time.Time, baseline func() error) {
	ctx := context.Background()
	b.Run("rate", func(b *testing.B) {
		Ratio(b, baseline, func() error {
			_, err := s.TakeRate(ctx, RateReq("bench", "bench", rateNow, 1_000_000))
			return err
		})
	})
	b.Run("concurrency_acquire", func(b *testing.B) {
		Ratio(b, baseline, func() error {
			_, err := s.AcquireSlot(ctx, SlotReq("bench", "bench", "p", T0, 5))
			return err
		})
	})
}

// Ratio times baseline and decision interleaved, one of each per
// iteration, and reports baseline-ns/op, decision-ns/op and rate-ratio
// (the decision rate as a fraction of the baseline's).
func Ratio(b *testing.B, baseline, decision func() error) {
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
