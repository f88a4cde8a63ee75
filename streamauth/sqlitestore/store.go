// Package sqlitestore is the SQLite streamauth.RevocationStore. The schema
// comes from the kit's migrate package (hardening_stream_revocations); the
// store never creates tables.
//
// A revocation is one row per user and tenant (empty for any); adding one is
// a single upsert that keeps the later revoked_at and expires_at, so
// replicas on the same file may add concurrently. Load deletes the rows past
// their expiry, then reads the rest.
package sqlitestore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/systembuilderhub/hardening/streamauth"
	"github.com/systembuilderhub/hardening/streamauth/internal/sqlrev"
)

// Store is the SQLite streamauth.RevocationStore.
type Store struct{ db *sqlx.DB }

var _ streamauth.RevocationStore = (*Store)(nil)

// New returns a store on db, opened by the caller with the kit's settings
// (migrate.OpenSQLite) and migrated (migrate.Up, 0005_streamauth).
func New(db *sqlx.DB) (*Store, error) {
	if db == nil {
		return nil, errors.New("streamauth/sqlitestore: nil db")
	}
	return &Store{db: db}, nil
}

// Add implements streamauth.RevocationStore with one upsert.
func (s *Store) Add(ctx context.Context, rev streamauth.Revocation) error {
	if err := rev.Validate(); err != nil {
		return err
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO hardening_stream_revocations (user_id, tenant_id, revoked_at, expires_at)
		VALUES (?, ?, ?, ?)
		ON CONFLICT (user_id, tenant_id) DO UPDATE SET
			revoked_at = max(revoked_at, excluded.revoked_at),
			expires_at = max(expires_at, excluded.expires_at)`,
		rev.Subject, rev.Tenant, rev.RevokedAt.UnixMilli(), rev.ExpiresAt.UnixMilli())
	if err != nil {
		return fmt.Errorf("streamauth/sqlitestore: add: %w", err)
	}
	return nil
}

// Load implements streamauth.RevocationStore: it deletes the rows expired
// at now and returns the others.
func (s *Store) Load(ctx context.Context, now time.Time) ([]streamauth.Revocation, error) {
	ms := now.UnixMilli()
	if _, err := s.db.ExecContext(ctx, `DELETE FROM hardening_stream_revocations WHERE expires_at <= ?`, ms); err != nil {
		return nil, fmt.Errorf("streamauth/sqlitestore: load: %w", err)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT user_id, tenant_id, revoked_at, expires_at
		FROM hardening_stream_revocations WHERE expires_at > ?`, ms)
	if err != nil {
		return nil, fmt.Errorf("streamauth/sqlitestore: load: %w", err)
	}
	out, err := sqlrev.Scan(rows)
	if err != nil {
		return nil, fmt.Errorf("streamauth/sqlitestore: load: %w", err)
	}
	return out, nil
}
