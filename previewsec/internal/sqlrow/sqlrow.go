// Package sqlrow maps the rows of the previewsec tables, the same on SQLite
// and Postgres (hardening_preview_keys, hardening_preview_revocations;
// times in Unix milliseconds), to previewsec values. It is shared by
// sqlitestore and postgresstore.
package sqlrow

import (
	"time"

	"github.com/systembuilderhub/hardening/previewsec"
)

// Key is one row of hardening_preview_keys.
type Key struct {
	KID         string `db:"kid"`
	PeriodStart int64  `db:"period_start"`
	Secret      []byte `db:"secret"`
	CreatedAt   int64  `db:"created_at"`
	ExpiresAt   int64  `db:"expires_at"`
}

// Key returns the row as a previewsec.Key, times in UTC.
func (r Key) Key() previewsec.Key {
	return previewsec.Key{
		ID: r.KID, PeriodStart: time.UnixMilli(r.PeriodStart).UTC(), Secret: r.Secret,
		CreatedAt: time.UnixMilli(r.CreatedAt).UTC(), ExpiresAt: time.UnixMilli(r.ExpiresAt).UTC(),
	}
}

// Keys converts rows, keeping their order.
func Keys(rows []Key) []previewsec.Key {
	keys := make([]previewsec.Key, len(rows))
	for i, r := range rows {
		keys[i] = r.Key()
	}
	return keys
}

// Revocation is one row of hardening_preview_revocations.
type Revocation struct {
	Kind      string `db:"kind"`
	Value     string `db:"value"`
	RevokedAt int64  `db:"revoked_at"`
	ExpiresAt int64  `db:"expires_at"`
}

// Revocations converts rows, keeping their order.
func Revocations(rows []Revocation) []previewsec.Revocation {
	out := make([]previewsec.Revocation, len(rows))
	for i, r := range rows {
		out[i] = previewsec.Revocation{Kind: previewsec.RevocationKind(r.Kind), Value: r.Value,
			RevokedAt: time.UnixMilli(r.RevokedAt).UTC(), ExpiresAt: time.UnixMilli(r.ExpiresAt).UTC()}
	}
	return out
}
