package postgresstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/systembuilderhub/hardening/internal/testenv"
	"github.com/systembuilderhub/hardening/streamauth"
	"github.com/systembuilderhub/hardening/streamauth/postgresstore"
)

// The benchmarks run a store call and a bare single-row round trip (a
// primary-key SELECT) alternately on the same pool and server, and report
// the ratio call/round trip:
//
//	POSTGRES_URL=... go test ./streamauth/postgresstore -run '^$' -bench . -count 5
//
// Add is the revocation write; Load is the revocation check against the
// store (what a registry's refresh runs; admissions decide from the
// registry's in-memory mirror), here over 100 live revocations.
func BenchmarkAddVsRoundTrip(b *testing.B) {
	benchVsRoundTrip(b, 0, func(s *postgresstore.Store, i int, now time.Time) error {
		return s.Add(context.Background(), streamauth.Revocation{Subject: fmt.Sprint("u", i%1000), RevokedAt: now, ExpiresAt: now.Add(time.Hour)})
	})
}

func BenchmarkLoadVsRoundTrip(b *testing.B) {
	benchVsRoundTrip(b, 100, func(s *postgresstore.Store, _ int, now time.Time) error {
		_, err := s.Load(context.Background(), now)
		return err
	})
}

func benchVsRoundTrip(b *testing.B, seed int, call func(s *postgresstore.Store, i int, now time.Time) error) {
	p := testenv.PostgresKit(b)
	s := newStore(b, p.DB)
	ctx := context.Background()
	now := time.Now()
	for i := range seed {
		if err := s.Add(ctx, streamauth.Revocation{Subject: fmt.Sprint("seed", i), RevokedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
			b.Fatal(err)
		}
	}
	bare := func() {
		var at int64
		err := p.DB.QueryRowContext(ctx, `SELECT revoked_at FROM hardening_stream_revocations WHERE user_id = $1 AND tenant_id = $2`, "seed0", "").Scan(&at)
		if err != nil && seed > 0 {
			b.Fatal(err)
		}
	}
	bare() // warm the pool and the statement caches
	var ours, base time.Duration
	i := 0
	for b.Loop() {
		i++
		t0 := time.Now()
		if err := call(s, i, t0); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		bare()
		base += time.Since(t1)
		ours += t1.Sub(t0)
	}
	b.ReportMetric(float64(ours)/float64(b.N), "store-ns/op")
	b.ReportMetric(float64(base)/float64(b.N), "roundtrip-ns/op")
	b.ReportMetric(float64(ours)/float64(base), "ratio")
}
