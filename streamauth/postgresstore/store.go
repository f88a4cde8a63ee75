// Package postgresstore is the Postgres streamauth.RevocationStore. The
// schema comes from the kit's migrate package
// (migrate/sql/postgres/0005_streamauth.sql: hardening_stream_revocations);
// the store never creates tables.
//
// The store takes a *sqlx.DB the application opened with the pgx driver
// (import _ "github.com/jackc/pgx/v5/stdlib", then sqlx.Open("pgx", url));
// a *sql.DB becomes one with sqlx.NewDb(db, "pgx"). The package does not
// import the driver itself.
//
// A revocation is one row per user and tenant (empty for any); adding one is
// a single upsert that keeps the later revoked_at and expires_at, so
// replicas on the same schema may add concurrently (Postgres serialises the
// conflicting upserts on the row). Load deletes the rows past their expiry
// and reads the rest in one statement; rows another session has locked are
// left for a later Load rather than waited for. Times are Unix milliseconds
// from the caller's clock, never now() in SQL.
//
// # Round trips
//
// Per call, once pgx has cached the statement on the connection (the first
// use of a statement on a connection also prepares it):
//
//	Add   1  INSERT … ON CONFLICT DO UPDATE with GREATEST
//	Load  1  a data-modifying CTE: DELETE the expired rows, SELECT the others
//
// The revocation check on the request path costs none: streamauth.Registry
// decides from its in-memory mirror and reads the store only to refresh it
// (WithRevocationRefresh).
package postgresstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/systembuilderhub/hardening/streamauth"
	"github.com/systembuilderhub/hardening/streamauth/internal/sqlrev"
)

// Store is the Postgres streamauth.RevocationStore.
type Store struct{ db *sqlx.DB }

var _ streamauth.RevocationStore = (*Store)(nil)

// checkTimeout bounds New's schema check.
const checkTimeout = 10 * time.Second

// New returns a store on db, which must carry the kit's Postgres
// migrations (migrate, 0005_streamauth). New checks that they are there
// with one query and says so when they are not.
func New(db *sqlx.DB) (*Store, error) {
	if db == nil {
		return nil, errors.New("streamauth/postgresstore: nil db")
	}
	ctx, cancel := context.WithTimeout(context.Background(), checkTimeout)
	defer cancel()
	var ok bool
	if err := db.QueryRowContext(ctx, `SELECT to_regclass('hardening_stream_revocations') IS NOT NULL`).Scan(&ok); err != nil {
		return nil, fmt.Errorf("streamauth/postgresstore: check schema: %w", err)
	}
	if !ok {
		return nil, errors.New("streamauth/postgresstore: the database lacks hardening_stream_revocations: apply the kit's Postgres migrations (migrate, 0005_streamauth) first")
	}
	return &Store{db: db}, nil
}

// Add implements streamauth.RevocationStore with one upsert.
func (s *Store) Add(ctx context.Context, rev streamauth.Revocation) error {
	if err := rev.Validate(); err != nil {
		return err
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO hardening_stream_revocations AS r (user_id, tenant_id, revoked_at, expires_at)
		VALUES ($1, $2, $3, $4)
		ON CONFLICT (user_id, tenant_id) DO UPDATE SET
			revoked_at = GREATEST(r.revoked_at, EXCLUDED.revoked_at),
			expires_at = GREATEST(r.expires_at, EXCLUDED.expires_at)`,
		rev.Subject, rev.Tenant, rev.RevokedAt.UnixMilli(), rev.ExpiresAt.UnixMilli())
	if err != nil {
		return fmt.Errorf("streamauth/postgresstore: add: %w", err)
	}
	return nil
}

// Load implements streamauth.RevocationStore: one statement deletes the
// rows expired at now (skipping rows locked by a concurrent Add or Load)
// and returns the others.
func (s *Store) Load(ctx context.Context, now time.Time) ([]streamauth.Revocation, error) {
	rows, err := s.db.QueryContext(ctx, `WITH expired AS (
			DELETE FROM hardening_stream_revocations WHERE (user_id, tenant_id) IN (
				SELECT user_id, tenant_id FROM hardening_stream_revocations
				WHERE expires_at <= $1 FOR UPDATE SKIP LOCKED))
		SELECT user_id, tenant_id, revoked_at, expires_at FROM hardening_stream_revocations WHERE expires_at > $1`,
		now.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("streamauth/postgresstore: load: %w", err)
	}
	out, err := sqlrev.Scan(rows)
	if err != nil {
		return nil, fmt.Errorf("streamauth/postgresstore: load: %w", err)
	}
	return out, nil
}
