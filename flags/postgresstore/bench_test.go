package postgresstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/systembuilderhub/hardening/flags"
	"github.com/systembuilderhub/hardening/internal/testenv"
)

// BenchmarkToggleVsRoundTrip runs a flag write (Toggle: value, audit
// record, version, NOTIFY in one function call) and a bare single-row
// round trip (a primary-key SELECT) alternately on the same pool and
// server, and reports the ratio write/round trip:
//
//	POSTGRES_URL=... go test ./flags/postgresstore -run '^$' -bench . -count 5
func BenchmarkToggleVsRoundTrip(b *testing.B) {
	p := testenv.PostgresKit(b)
	s := newStore(b, p.DB)
	ctx := context.Background()
	bare := func() {
		var v int64
		if err := p.DB.QueryRowContext(ctx, `SELECT version FROM hardening_flags_version WHERE id = 1`).Scan(&v); err != nil {
			b.Fatal(err)
		}
	}
	bare() // warm the pool and the statement caches
	var ours, base time.Duration
	i := 0
	for b.Loop() {
		i++
		t0 := time.Now()
		if _, err := s.Toggle(ctx, flags.ToggleRequest{Flag: "bench", Value: i%2 == 0, By: "bench", At: t0}); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		bare()
		base += time.Since(t1)
		ours += t1.Sub(t0)
	}
	b.ReportMetric(float64(ours)/float64(b.N), "toggle-ns/op")
	b.ReportMetric(float64(base)/float64(b.N), "roundtrip-ns/op")
	b.ReportMetric(float64(ours)/float64(base), "ratio")
}
