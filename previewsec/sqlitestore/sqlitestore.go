// Package sqlitestore is the SQLite previewsec.KeyStore and
// previewsec.RevocationStore. Tables come from the kit's migrations
// (package migrate, 0003_previewsec.sql); every state change is one
// BEGIN IMMEDIATE transaction, so replicas sharing the database file agree
// on one key per rotation period.
package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/systembuilderhub/hardening/internal/sqlitex"
	"github.com/systembuilderhub/hardening/previewsec"
	"github.com/systembuilderhub/hardening/previewsec/internal/keyrules"
	"github.com/systembuilderhub/hardening/previewsec/internal/sqlrow"
)

// Store keeps keys in hardening_preview_keys and revocations in
// hardening_preview_revocations.
type Store struct {
	db *sqlx.DB
}

var (
	_ previewsec.KeyStore        = (*Store)(nil)
	_ previewsec.RevocationStore = (*Store)(nil)
)

// New returns a store on db, opened by the caller with the kit's settings
// (migrate.OpenSQLite) and migrated (migrate.Up).
func New(db *sqlx.DB) (*Store, error) {
	if db == nil {
		return nil, errors.New("previewsec/sqlitestore: nil db")
	}
	return &Store{db: db}, nil
}

// CreateKey implements previewsec.KeyStore.
func (s *Store) CreateKey(ctx context.Context, k previewsec.Key) (previewsec.KeyCreateResult, error) {
	if err := keyrules.CheckKey(k.ID, k.Secret, k.PeriodStart, k.ExpiresAt); err != nil {
		return previewsec.KeyCreateResult{}, err
	}
	var res previewsec.KeyCreateResult
	err := sqlitex.Immediate(ctx, s.db, func(c *sqlx.Conn) error {
		r, err := c.ExecContext(ctx, `INSERT INTO hardening_preview_keys (kid, period_start, secret, created_at, expires_at)
			VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
			k.ID, k.PeriodStart.UnixMilli(), k.Secret, k.CreatedAt.UnixMilli(), k.ExpiresAt.UnixMilli())
		if err != nil {
			return err
		}
		n, err := r.RowsAffected()
		if err != nil {
			return err
		}
		var row sqlrow.Key
		err = c.GetContext(ctx, &row, `SELECT kid, period_start, secret, created_at, expires_at
			FROM hardening_preview_keys WHERE period_start = ?`, k.PeriodStart.UnixMilli())
		if errors.Is(err, sql.ErrNoRows) {
			return previewsec.ErrKeyConflict
		}
		if err != nil {
			return err
		}
		res = previewsec.KeyCreateResult{Key: row.Key(), Created: n == 1}
		return nil
	})
	if err != nil {
		return previewsec.KeyCreateResult{}, fmt.Errorf("previewsec/sqlitestore: create key: %w", err)
	}
	return res, nil
}

// Keys implements previewsec.KeyStore.
func (s *Store) Keys(ctx context.Context, now time.Time) ([]previewsec.Key, error) {
	var rows []sqlrow.Key
	if err := s.db.SelectContext(ctx, &rows, `SELECT kid, period_start, secret, created_at, expires_at
		FROM hardening_preview_keys WHERE expires_at > ? ORDER BY period_start`, now.UnixMilli()); err != nil {
		return nil, fmt.Errorf("previewsec/sqlitestore: keys: %w", err)
	}
	return sqlrow.Keys(rows), nil
}

// DeleteExpiredKeys implements previewsec.KeyStore.
func (s *Store) DeleteExpiredKeys(ctx context.Context, now time.Time) (int, error) {
	var n int64
	err := sqlitex.Immediate(ctx, s.db, func(c *sqlx.Conn) error {
		r, err := c.ExecContext(ctx, `DELETE FROM hardening_preview_keys WHERE expires_at <= ?`, now.UnixMilli())
		if err != nil {
			return err
		}
		n, err = r.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("previewsec/sqlitestore: delete expired keys: %w", err)
	}
	return int(n), nil
}

// Revoke implements previewsec.RevocationStore.
func (s *Store) Revoke(ctx context.Context, rev previewsec.Revocation) error {
	if err := keyrules.CheckRevocation(string(rev.Kind), rev.Value, rev.ExpiresAt); err != nil {
		return err
	}
	err := sqlitex.Immediate(ctx, s.db, func(c *sqlx.Conn) error {
		_, err := c.ExecContext(ctx, `INSERT INTO hardening_preview_revocations (kind, value, revoked_at, expires_at)
			VALUES (?, ?, ?, ?)
			ON CONFLICT (kind, value) DO UPDATE SET
				revoked_at = max(revoked_at, excluded.revoked_at),
				expires_at = max(expires_at, excluded.expires_at)`,
			string(rev.Kind), rev.Value, rev.RevokedAt.UnixMilli(), rev.ExpiresAt.UnixMilli())
		return err
	})
	if err != nil {
		return fmt.Errorf("previewsec/sqlitestore: revoke: %w", err)
	}
	return nil
}

// Revocations implements previewsec.RevocationStore.
func (s *Store) Revocations(ctx context.Context, now time.Time) ([]previewsec.Revocation, error) {
	var rows []sqlrow.Revocation
	if err := s.db.SelectContext(ctx, &rows, `SELECT kind, value, revoked_at, expires_at
		FROM hardening_preview_revocations WHERE expires_at > ?`, now.UnixMilli()); err != nil {
		return nil, fmt.Errorf("previewsec/sqlitestore: revocations: %w", err)
	}
	return sqlrow.Revocations(rows), nil
}

// DeleteExpiredRevocations implements previewsec.RevocationStore.
func (s *Store) DeleteExpiredRevocations(ctx context.Context, now time.Time) (int, error) {
	var n int64
	err := sqlitex.Immediate(ctx, s.db, func(c *sqlx.Conn) error {
		r, err := c.ExecContext(ctx, `DELETE FROM hardening_preview_revocations WHERE expires_at <= ?`, now.UnixMilli())
		if err != nil {
			return err
		}
		n, err = r.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("previewsec/sqlitestore: delete expired revocations: %w", err)
	}
	return int(n), nil
}
