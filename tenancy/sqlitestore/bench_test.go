package sqlitestore_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening/internal/testenv"
	"github.com/systembuilderhub/hardening/tenancy"
	"github.com/systembuilderhub/hardening/tenancy/sqlitestore"
	"github.com/systembuilderhub/hardening/tenancy/storetest"
)

// BenchmarkDecision measures one quota decision against the bare store
// round trip it is built from, in the same run on the same file: the
// baseline is one autocommit one-row UPDATE.
//
//	go test ./tenancy/sqlitestore -run '^$' -bench Decision -benchmem
func BenchmarkDecision(b *testing.B) {
	db := testenv.SQLite(b)
	s, err := sqlitestore.New(db)
	require.NoError(b, err)
	ctx := context.Background()
	db.MustExec(`INSERT INTO hardening_llm_usage (tenant_id, month, spent_micros) VALUES ('bench', 'base', 0)`)

	b.Run("baseline_update", func(b *testing.B) {
		for b.Loop() {
			if _, err := db.ExecContext(ctx, `UPDATE hardening_llm_usage SET spent_micros = spent_micros + 1 WHERE tenant_id = 'bench' AND month = 'base'`); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("snapshot_rate", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.TakeRate(ctx, tenancy.RateRequest{Tenant: "bench", Resource: tenancy.ResourceSnapshots, Now: storetest.T0, DefaultLimit: 1_000_000}); err != nil {
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
		i := 0
		for b.Loop() {
			i++
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

// BenchmarkRatio interleaves the bare one-row UPDATE and one decision in
// every iteration, so both see the same machine load, and reports the
// decision rate as a fraction of the UPDATE rate (rate-ratio).
//
//	go test ./tenancy/sqlitestore -run '^$' -bench Ratio -benchmem
func BenchmarkRatio(b *testing.B) {
	db := testenv.SQLite(b)
	s, err := sqlitestore.New(db)
	require.NoError(b, err)
	ctx := context.Background()
	db.MustExec(`INSERT INTO hardening_llm_usage (tenant_id, month, spent_micros) VALUES ('bench', 'base', 0)`)
	update := func() error {
		_, err := db.ExecContext(ctx, `UPDATE hardening_llm_usage SET spent_micros = spent_micros + 1 WHERE tenant_id = 'bench' AND month = 'base'`)
		return err
	}
	b.Run("snapshot_rate", func(b *testing.B) {
		ratio(b, update, func() error {
			_, err := s.TakeRate(ctx, tenancy.RateRequest{Tenant: "bench", Resource: tenancy.ResourceSnapshots, Now: storetest.T0, DefaultLimit: 1_000_000})
			return err
		})
	})
	b.Run("preview_acquire", func(b *testing.B) {
		ratio(b, update, func() error {
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
