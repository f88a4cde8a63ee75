package postgresstore_test

import (
	"context"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/systembuilderhub/hardening/idempotency"
	"github.com/systembuilderhub/hardening/idempotency/postgresstore"
	"github.com/systembuilderhub/hardening/idempotency/storetest"
	"github.com/systembuilderhub/hardening/internal/testenv"
)

// Bare single-row round trips on the store's own table: an upsert of one
// row (the write a claim makes) and a SELECT of one row by key (the read a
// replay makes).
const (
	bareUpsert = `INSERT INTO hardening_idempotency_keys AS k (scope_key, fingerprint, state, owner, lease_expires_at, created_at, expires_at)
VALUES ($1, 'fp', 'in_flight', 'o', $2, $3, $4)
ON CONFLICT (scope_key) DO UPDATE SET owner = excluded.owner, lease_expires_at = excluded.lease_expires_at`
	bareSelect = `SELECT fingerprint, state, status_code, headers, body, expires_at FROM hardening_idempotency_keys WHERE scope_key = $1`
)

// BenchmarkPostgres measures the store's decisions against a bare
// single-row round trip on the same server in the same run. The ratio_*
// cases interleave the two, one of each per iteration (ns/op is the
// pair), and report x_bare_rt: the decision's time over the bare round
// trip's, how many bare round trips it costs (a first request makes two:
// claim and complete). The store_*, first and
// replay cases are the ones every store runs (storetest.Bench).
func BenchmarkPostgres(b *testing.B) {
	ctx := context.Background()
	now := time.Now()
	ms := now.UnixMilli()
	upsert := func(b *testing.B, db *sqlx.DB, k string) {
		if _, err := db.ExecContext(ctx, bareUpsert, k, ms+30_000, ms, ms+86_400_000); err != nil {
			b.Fatal(err)
		}
	}
	selectOne := func(b *testing.B, db *sqlx.DB) {
		var r struct {
			Fingerprint string  `db:"fingerprint"`
			State       string  `db:"state"`
			Status      *int    `db:"status_code"`
			Headers     *string `db:"headers"`
			Body        []byte  `db:"body"`
			ExpiresAt   int64   `db:"expires_at"`
		}
		if err := db.GetContext(ctx, &r, bareSelect, "k"); err != nil {
			b.Fatal(err)
		}
	}
	record := idempotency.Record{StatusCode: 201, Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(`{"id":"0123456789abcdef"}`)}
	claim := func(k string) idempotency.ClaimRequest {
		return idempotency.ClaimRequest{Key: k, Fingerprint: "fp", Owner: "o", Now: now, LockTimeout: time.Minute, TTL: time.Hour}
	}

	b.Run("baseline_upsert", func(b *testing.B) {
		db := testenv.PostgresKit(b).DB
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			upsert(b, db, "bare-"+benchKey(i))
		}
	})
	b.Run("baseline_select", func(b *testing.B) {
		db := testenv.PostgresKit(b).DB
		upsert(b, db, "k")
		b.ReportAllocs()
		for b.Loop() {
			selectOne(b, db)
		}
	})
	b.Run("ratio_first", func(b *testing.B) {
		db := testenv.PostgresKit(b).DB
		s, err := postgresstore.New(db)
		if err != nil {
			b.Fatal(err)
		}
		var bare, ours time.Duration
		for i := 0; b.Loop(); i++ {
			t0 := time.Now()
			upsert(b, db, "bare-"+benchKey(i))
			bare += time.Since(t0)
			t0 = time.Now()
			k := benchKey(i)
			if res, err := s.Claim(ctx, claim(k)); err != nil || res.Status != idempotency.Claimed {
				b.Fatal(res.Status, err)
			}
			if ok, err := s.Complete(ctx, idempotency.CompleteRequest{Key: k, Owner: "o", Now: now, TTL: time.Hour, Record: record}); err != nil || !ok {
				b.Fatal(ok, err)
			}
			ours += time.Since(t0)
		}
		b.ReportMetric(float64(ours)/float64(bare), "x_bare_rt")
	})
	b.Run("ratio_replay", func(b *testing.B) {
		db := testenv.PostgresKit(b).DB
		s, err := postgresstore.New(db)
		if err != nil {
			b.Fatal(err)
		}
		upsert(b, db, "k")
		_, _ = s.Claim(ctx, claim("r"))
		_, _ = s.Complete(ctx, idempotency.CompleteRequest{Key: "r", Owner: "o", Now: now, TTL: time.Hour, Record: record})
		var bare, ours time.Duration
		for b.Loop() {
			t0 := time.Now()
			selectOne(b, db)
			bare += time.Since(t0)
			t0 = time.Now()
			if res, err := s.Claim(ctx, claim("r")); err != nil || res.Status != idempotency.Completed {
				b.Fatal(res.Status, err)
			}
			ours += time.Since(t0)
		}
		b.ReportMetric(float64(ours)/float64(bare), "x_bare_rt")
	})
	storetest.Bench(b, func(b *testing.B) idempotency.Store { return newStore(b) }, benchKey)
}

// benchKey is a scoped key as the middleware makes them (a SHA-256 in
// hex): random B-tree positions, like production inserts.
func benchKey(i int) string { return idempotency.ScopedKey("", "POST", "/things", strconv.Itoa(i)) }
