// Package sqlitestore is a tenancy.Store on SQLite. Every state change is
// one BEGIN IMMEDIATE transaction (sqlitex.Immediate), so several
// processes sharing one database file decide consistently: semaphores,
// rates and budgets are never over-granted. The tables come from the kit's
// migrations (migrate.Up: 0002 and 0006); the store never creates them.
package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/jmoiron/sqlx"

	"github.com/systembuilderhub/hardening/internal/sqlitex"
	"github.com/systembuilderhub/hardening/tenancy"

	"github.com/systembuilderhub/hardening/tenancy/internal/sqlkit"
	"github.com/systembuilderhub/hardening/tenancy/internal/storekit"
)

// Store is a tenancy.Store on SQLite.
type Store struct {
	db *sqlx.DB
}

var _ tenancy.Store = (*Store)(nil)

// New returns a store on db, opened by the caller with the kit's settings
// (migrate.OpenSQLite: WAL, busy_timeout) and migrated.
func New(db *sqlx.DB) (*Store, error) {
	if db == nil {
		return nil, errors.New("tenancy/sqlitestore: nil *sqlx.DB")
	}
	return &Store{db: db}, nil
}

type queryer interface {
	sqlx.QueryerContext
	sqlx.ExecerContext
}

// limitOf returns the tenant's override of quota, else def.
func limitOf(ctx context.Context, q queryer, tenant tenancy.ID, quota string, def int64) (int64, error) {
	var v int64
	err := sqlx.GetContext(ctx, q, &v, `SELECT value FROM hardening_quota_overrides WHERE tenant_id = ? AND quota = ?`, tenant, quota)
	if errors.Is(err, sql.ErrNoRows) {
		return def, nil
	}
	return v, err
}

func count(ctx context.Context, q queryer, query string, args ...any) (int64, error) {
	var n int64
	err := sqlx.GetContext(ctx, q, &n, query, args...)
	return n, err
}

// deleteOne runs a DELETE of at most one row and reports whether it
// deleted one.
func deleteOne(ctx context.Context, q queryer, query string, args ...any) (bool, error) {
	r, err := q.ExecContext(ctx, query, args...)
	if err != nil {
		return false, err
	}
	n, err := r.RowsAffected()
	return n == 1, err
}

// Limits implements tenancy.LimitStore.
func (s *Store) Limits(ctx context.Context, tenant tenancy.ID, defaults tenancy.Limits) (tenancy.Limits, error) {
	return limitsOf(ctx, s.db, tenant, defaults)
}

func limitsOf(ctx context.Context, q queryer, tenant tenancy.ID, defaults tenancy.Limits) (tenancy.Limits, error) {
	var rows []sqlkit.Override
	if err := sqlx.SelectContext(ctx, q, &rows, `SELECT quota, value FROM hardening_quota_overrides WHERE tenant_id = ?`, tenant); err != nil {
		return nil, err
	}
	return sqlkit.Effective(rows, defaults), nil
}

// SetLimits implements tenancy.LimitStore: the overrides and their audit
// rows are written in one transaction.
func (s *Store) SetLimits(ctx context.Context, req tenancy.SetLimitsRequest) (l tenancy.Limits, err error) {
	now := req.Now.UnixMilli()
	err = sqlitex.Immediate(ctx, s.db, func(c *sqlx.Conn) error {
		for _, name := range storekit.SortedNames(req.Set) {
			old, err := limitOf(ctx, c, req.Tenant, name, req.Defaults[name])
			if err != nil {
				return err
			}
			if _, err := c.ExecContext(ctx, `INSERT INTO hardening_quota_overrides (tenant_id, quota, value, updated_at) VALUES (?, ?, ?, ?)
				ON CONFLICT (tenant_id, quota) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
				req.Tenant, name, req.Set[name], now); err != nil {
				return err
			}
			if _, err := c.ExecContext(ctx, `INSERT INTO hardening_quota_audit (tenant_id, quota, old_value, new_value, changed_by, changed_at, reason)
				VALUES (?, ?, ?, ?, ?, ?, ?)`, req.Tenant, name, old, req.Set[name], req.ChangedBy, now, req.Reason); err != nil {
				return err
			}
		}
		l, err = limitsOf(ctx, c, req.Tenant, req.Defaults)
		return err
	})
	return l, err
}

// Audit implements tenancy.LimitStore. The cursor is the id of the last
// entry of the previous page.
func (s *Store) Audit(ctx context.Context, q tenancy.AuditQuery) (tenancy.AuditPage, error) {
	after, err := sqlkit.After(q.Cursor)
	if err != nil {
		return tenancy.AuditPage{}, err
	}
	size := storekit.PageSize(q.Limit)
	var rows []sqlkit.AuditRow
	err = s.db.SelectContext(ctx, &rows, `SELECT id, tenant_id, quota, old_value, new_value, changed_by, changed_at, reason
		FROM hardening_quota_audit
		WHERE id > ? AND (? = '' OR tenant_id = ?) AND changed_at >= ?
		ORDER BY id LIMIT ?`, after, q.Tenant, q.Tenant, sqlkit.Since(q.Since), size+1)
	if err != nil {
		return tenancy.AuditPage{}, fmt.Errorf("tenancy/sqlitestore: audit: %w", err)
	}
	return sqlkit.Page(rows, size), nil
}
