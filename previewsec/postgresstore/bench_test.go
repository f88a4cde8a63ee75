package postgresstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/systembuilderhub/hardening/internal/testenv"
	"github.com/systembuilderhub/hardening/previewsec"
	"github.com/systembuilderhub/hardening/previewsec/postgresstore"
)

// BenchmarkAgainstBareRoundTrip runs each store call and a bare single-row
// round trip (SELECT $1::bigint) on the same pool and server in
// alternating batches, so load on a shared machine hits both alike, and
// reports the ratio store/bare:
//
//	POSTGRES_URL=… go test ./previewsec/postgresstore -run '^$' -bench Bare -count 5
func BenchmarkAgainstBareRoundTrip(b *testing.B) {
	ctx := context.Background()
	p := testenv.PostgresKit(b)
	db := p.Open(b)
	s, err := postgresstore.New(db)
	if err != nil {
		b.Fatal(err)
	}
	now := time.Date(2030, 1, 2, 12, 0, 0, 0, time.UTC)
	ring, err := previewsec.NewKeyRing(s, previewsec.WithClock(func() time.Time { return now }))
	if err != nil {
		b.Fatal(err)
	}
	if err := ring.Refresh(ctx); err != nil { // yesterday's and today's key
		b.Fatal(err)
	}
	current, err := s.Keys(ctx, now)
	if err != nil || len(current) == 0 {
		b.Fatal(current, err)
	}
	for i := range 20 { // a revocation list of 20 live entries
		if err := s.Revoke(ctx, previewsec.Revocation{Kind: previewsec.RevokeTokenID, Value: fmt.Sprint("jti-", i),
			RevokedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
			b.Fatal(err)
		}
	}
	rev := previewsec.Revocation{Kind: previewsec.RevokePreviewID, Value: "p1", RevokedAt: now, ExpiresAt: now.Add(time.Hour)}
	ops := []struct {
		name string
		op   func() error
	}{
		{"Keys", func() error { _, err := s.Keys(ctx, now); return err }},
		{"CreateKeyExisting", func() error { _, err := s.CreateKey(ctx, current[len(current)-1]); return err }},
		{"Revocations", func() error { _, err := s.Revocations(ctx, now); return err }},
		{"Revoke", func() error { return s.Revoke(ctx, rev) }},
	}
	bare := func() error {
		var v int64
		return db.QueryRowContext(ctx, `SELECT $1::bigint`, int64(1)).Scan(&v)
	}
	for _, o := range ops {
		b.Run(o.name, func(b *testing.B) { interleave(b, o.op, bare) })
	}
}

const batch = 16

// interleave times ours and bare in alternating batches and reports both
// and their ratio.
func interleave(b *testing.B, ours, bare func() error) {
	var oursT, bareT time.Duration
	for b.Loop() {
		t0 := time.Now()
		for range batch {
			if err := ours(); err != nil {
				b.Fatal(err)
			}
		}
		t1 := time.Now()
		for range batch {
			if err := bare(); err != nil {
				b.Fatal(err)
			}
		}
		oursT += t1.Sub(t0)
		bareT += time.Since(t1)
	}
	n := float64(b.N * batch)
	b.ReportMetric(float64(oursT.Nanoseconds())/n, "store-ns/op")
	b.ReportMetric(float64(bareT.Nanoseconds())/n, "bare-ns/op")
	b.ReportMetric(float64(oursT)/float64(bareT), "ratio")
}
