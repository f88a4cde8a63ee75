package postgresstore

import (
	"context"
	"fmt"
	"time"

	"github.com/systembuilderhub/hardening/previewsec"
	"github.com/systembuilderhub/hardening/previewsec/internal/keyrules"
	"github.com/systembuilderhub/hardening/previewsec/internal/sqlrow"
)

// Revoke implements previewsec.RevocationStore: one upsert that keeps the
// later RevokedAt and the later ExpiresAt of an existing entry.
func (s *Store) Revoke(ctx context.Context, rev previewsec.Revocation) error {
	if err := keyrules.CheckRevocation(string(rev.Kind), rev.Value, rev.ExpiresAt); err != nil {
		return err
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO hardening_preview_revocations AS r (kind, value, revoked_at, expires_at)
		VALUES ($1, $2, $3, $4)
		ON CONFLICT (kind, value) DO UPDATE SET
			revoked_at = GREATEST(r.revoked_at, excluded.revoked_at),
			expires_at = GREATEST(r.expires_at, excluded.expires_at)`,
		string(rev.Kind), rev.Value, ms(rev.RevokedAt), ms(rev.ExpiresAt))
	if err != nil {
		return fmt.Errorf("previewsec/postgresstore: revoke: %w", err)
	}
	return nil
}

// Revocations implements previewsec.RevocationStore: one SELECT.
func (s *Store) Revocations(ctx context.Context, now time.Time) ([]previewsec.Revocation, error) {
	var rows []sqlrow.Revocation
	if err := s.db.SelectContext(ctx, &rows, `SELECT kind, value, revoked_at, expires_at
		FROM hardening_preview_revocations WHERE expires_at > $1`, ms(now)); err != nil {
		return nil, fmt.Errorf("previewsec/postgresstore: revocations: %w", err)
	}
	return sqlrow.Revocations(rows), nil
}

// DeleteExpiredRevocations implements previewsec.RevocationStore: one
// DELETE.
func (s *Store) DeleteExpiredRevocations(ctx context.Context, now time.Time) (int, error) {
	n, err := s.exec(ctx, `DELETE FROM hardening_preview_revocations WHERE expires_at <= $1`, ms(now))
	if err != nil {
		return 0, fmt.Errorf("previewsec/postgresstore: delete expired revocations: %w", err)
	}
	return n, nil
}
