// Package sqlrev reads revocation rows the same way in every SQL store of
// streamauth.
package sqlrev

import (
	"database/sql"
	"time"

	"github.com/systembuilderhub/hardening/streamauth"
)

// Scan reads rows of (user_id, tenant_id, revoked_at, expires_at), the
// times in Unix milliseconds, and closes rows.
func Scan(rows *sql.Rows) ([]streamauth.Revocation, error) {
	defer rows.Close()
	var out []streamauth.Revocation
	for rows.Next() {
		var r streamauth.Revocation
		var at, exp int64
		if err := rows.Scan(&r.Subject, &r.Tenant, &at, &exp); err != nil {
			return nil, err
		}
		r.RevokedAt, r.ExpiresAt = time.UnixMilli(at).UTC(), time.UnixMilli(exp).UTC()
		out = append(out, r)
	}
	return out, rows.Err()
}
