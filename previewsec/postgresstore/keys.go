package postgresstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/systembuilderhub/hardening/previewsec"
	"github.com/systembuilderhub/hardening/previewsec/internal/keyrules"
	"github.com/systembuilderhub/hardening/previewsec/internal/sqlrow"
)

// createKey calls the create-if-absent function of 0003_previewsec.
const createKey = `SELECT status, kid, period_start, secret, created_at, expires_at
	FROM hardening_preview_create_key($1, $2, $3, $4, $5)`

// createAttempts bounds the calls of createKey when the server reports a
// serialization failure (non-default isolation levels only).
const createAttempts = 3

// CreateKey implements previewsec.KeyStore: one call of
// hardening_preview_create_key.
func (s *Store) CreateKey(ctx context.Context, k previewsec.Key) (previewsec.KeyCreateResult, error) {
	if err := keyrules.CheckKey(k.ID, k.Secret, k.PeriodStart, k.ExpiresAt); err != nil {
		return previewsec.KeyCreateResult{}, err
	}
	var row struct {
		Status int `db:"status"`
		sqlrow.Key
	}
	var err error
	for range createAttempts {
		err = s.db.GetContext(ctx, &row, createKey,
			k.ID, ms(k.PeriodStart), k.Secret, ms(k.CreatedAt), ms(k.ExpiresAt))
		if !retryable(err) {
			break
		}
	}
	if err != nil {
		return previewsec.KeyCreateResult{}, fmt.Errorf("previewsec/postgresstore: create key: %w", err)
	}
	if row.Status < 0 {
		return previewsec.KeyCreateResult{}, fmt.Errorf("previewsec/postgresstore: create key %s: %w", k.ID, previewsec.ErrKeyConflict)
	}
	return previewsec.KeyCreateResult{Key: row.Key.Key(), Created: row.Status == 1}, nil
}

// retryable reports whether err is a serialization failure (40001) or a
// deadlock (40P01), after which the same call may succeed. The SQLSTATE is
// read through the method pgx's and lib/pq's errors both have.
func retryable(err error) bool {
	var se interface{ SQLState() string }
	if err == nil || !errors.As(err, &se) {
		return false
	}
	return se.SQLState() == "40001" || se.SQLState() == "40P01"
}

// Keys implements previewsec.KeyStore: one SELECT.
func (s *Store) Keys(ctx context.Context, now time.Time) ([]previewsec.Key, error) {
	var rows []sqlrow.Key
	if err := s.db.SelectContext(ctx, &rows, `SELECT kid, period_start, secret, created_at, expires_at
		FROM hardening_preview_keys WHERE expires_at > $1 ORDER BY period_start`, ms(now)); err != nil {
		return nil, fmt.Errorf("previewsec/postgresstore: keys: %w", err)
	}
	return sqlrow.Keys(rows), nil
}

// DeleteExpiredKeys implements previewsec.KeyStore: one DELETE.
func (s *Store) DeleteExpiredKeys(ctx context.Context, now time.Time) (int, error) {
	n, err := s.exec(ctx, `DELETE FROM hardening_preview_keys WHERE expires_at <= $1`, ms(now))
	if err != nil {
		return 0, fmt.Errorf("previewsec/postgresstore: delete expired keys: %w", err)
	}
	return n, nil
}

// exec runs one statement and returns the rows it affected.
func (s *Store) exec(ctx context.Context, query string, args ...any) (int, error) {
	r, err := s.db.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	n, err := r.RowsAffected()
	return int(n), err
}
