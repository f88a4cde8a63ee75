package sqlitestore_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/systembuilderhub/hardening/idempotency"
	"github.com/systembuilderhub/hardening/idempotency/storetest"
	"github.com/systembuilderhub/hardening/internal/sqlitex"
)

// BenchmarkSQLite measures a first request and a replay through the
// middleware against the raw store round trips in the same run: a bare
// INSERT + UPDATE pair writing the same columns as the store's claim and
// complete (each its own BEGIN IMMEDIATE transaction, as the store's are)
// and a bare SELECT of one record. The store_* cases call the store
// directly; first and replay go through the whole middleware.
func BenchmarkSQLite(b *testing.B) {
	ctx := context.Background()
	b.Run("baseline_insert_update", func(b *testing.B) {
		db := newStoreDB(b)
		now := time.Now().UnixMilli()
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			k := benchKey(i)
			if err := sqlitex.Immediate(ctx, db, func(c *sqlx.Conn) error {
				_, err := c.ExecContext(ctx, `INSERT INTO hardening_idempotency_keys (scope_key, fingerprint, state, owner, lease_expires_at, created_at, expires_at)
VALUES (?, 'fp', 'in_flight', 'o', ?, ?, ?)`, k, now+30_000, now, now+86_400_000)
				return err
			}); err != nil {
				b.Fatal(err)
			}
			if err := sqlitex.Immediate(ctx, db, func(c *sqlx.Conn) error {
				_, err := c.ExecContext(ctx, `UPDATE hardening_idempotency_keys SET state = 'completed', owner = NULL, lease_expires_at = NULL,
  status_code = 201, headers = ?, body = ?, body_stored = 1, expires_at = ? WHERE scope_key = ?`,
					`{"Content-Type":["application/json"]}`, []byte(`{"id":"0123456789abcdef"}`), now+86_400_000, k)
				return err
			}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("baseline_select", func(b *testing.B) {
		db := newStoreDB(b)
		_, err := db.Exec(`INSERT INTO hardening_idempotency_keys (scope_key, fingerprint, state, status_code, headers, body, created_at, expires_at)
VALUES ('k', 'fp', 'completed', 201, '{}', x'00', 1, 2)`)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			var r struct {
				Fingerprint string `db:"fingerprint"`
				State       string `db:"state"`
				Status      int    `db:"status_code"`
				Headers     string `db:"headers"`
				Body        []byte `db:"body"`
				ExpiresAt   int64  `db:"expires_at"`
			}
			if err := db.GetContext(ctx, &r, `SELECT fingerprint, state, status_code, headers, body, expires_at FROM hardening_idempotency_keys WHERE scope_key = ?`, "k"); err != nil {
				b.Fatal(err)
			}
		}
	})
	storetest.Bench(b, func(b *testing.B) idempotency.Store { return newStore(b) }, benchKey)
}

// benchKey is a scoped key as the middleware makes them (a SHA-256 in
// hex): random B-tree positions, like production inserts.
func benchKey(i int) string { return idempotency.ScopedKey("", "POST", "/things", strconv.Itoa(i)) }
