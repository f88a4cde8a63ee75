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
// interleaved with baseline by Ratio so both see the same machine load,
// and reports the decision rate as a fraction of the
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

// RatioBatch is how many calls of each side Ratio times at once.
const RatioBatch = 16

// Ratio times baseline and decision interleaved, a batch of RatioBatch
// calls of each per iteration (alternating which goes first), so both see
// the same machine load and the clock reads cost each side one read per
// batch rather than one per call. It reports baseline-ns/op and
// decision-ns/op (per call) and rate-ratio: the decision rate as a
// fraction of the baseline's (1.0 = as fast). ns/op is per iteration
// (2 × RatioBatch calls).
func Ratio(b *testing.B, baseline, decision func() error) {
	var base, dec time.Duration
	var n int
	for b.Loop() {
		if n%2 == 0 {
			base += timeBatch(b, baseline)
			dec += timeBatch(b, decision)
		} else {
			dec += timeBatch(b, decision)
			base += timeBatch(b, baseline)
		}
		n++
	}
	calls := float64(n * RatioBatch)
	b.ReportMetric(float64(base.Nanoseconds())/calls, "baseline-ns/op")
	b.ReportMetric(float64(dec.Nanoseconds())/calls, "decision-ns/op")
	b.ReportMetric(float64(base)/float64(dec), "rate-ratio")
}

// timeBatch times RatioBatch calls of fn.
func timeBatch(b *testing.B, fn func() error) time.Duration {
	t0 := time.Now()
	for range RatioBatch {
		if err := fn(); err != nil {
			b.Fatal(err)
		}
	}
	return time.Since(t0)
}
