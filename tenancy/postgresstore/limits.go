package postgresstore

import (
	"context"
	"fmt"

	"github.com/systembuilderhub/hardening/tenancy"
	"github.com/systembuilderhub/hardening/tenancy/internal/sqlkit"
	"github.com/systembuilderhub/hardening/tenancy/internal/storekit"
)

// Limits implements tenancy.LimitStore.
func (s *Store) Limits(ctx context.Context, tenant tenancy.ID, defaults tenancy.Limits) (tenancy.Limits, error) {
	var rows []sqlkit.Override
	if err := s.db.SelectContext(ctx, &rows, `SELECT o_quota AS quota, o_value AS value FROM hardening_quota_overrides_of($1)`, string(tenant)); err != nil {
		return nil, fmt.Errorf("tenancy/postgresstore: limits: %w", err)
	}
	return sqlkit.Effective(rows, defaults), nil
}

// SetLimits implements tenancy.LimitStore: the overrides and their audit
// rows (in quota name order) are written by one function call, so in one
// transaction.
func (s *Store) SetLimits(ctx context.Context, req tenancy.SetLimitsRequest) (tenancy.Limits, error) {
	names := storekit.SortedNames(req.Set)
	defs, vals := make([]int64, len(names)), make([]int64, len(names))
	for i, n := range names {
		defs[i], vals[i] = req.Defaults[n], req.Set[n]
	}
	var rows []sqlkit.Override
	if err := s.db.SelectContext(ctx, &rows, `SELECT o_quota AS quota, o_value AS value FROM hardening_quota_set_limits($1, $2, $3, $4, $5, $6, $7)`,
		string(req.Tenant), names, defs, vals, req.ChangedBy, req.Reason, req.Now.UnixMilli()); err != nil {
		return nil, fmt.Errorf("tenancy/postgresstore: set limits: %w", err)
	}
	return sqlkit.Effective(rows, req.Defaults), nil
}

// Audit implements tenancy.LimitStore. The cursor is the id of the last
// entry of the previous page. An empty q.Tenant reads every tenant's
// entries: the function sets app.cross_tenant for that statement, so it
// works under row-level security.
func (s *Store) Audit(ctx context.Context, q tenancy.AuditQuery) (tenancy.AuditPage, error) {
	after, err := sqlkit.After(q.Cursor)
	if err != nil {
		return tenancy.AuditPage{}, err
	}
	size := storekit.PageSize(q.Limit)
	var rows []sqlkit.AuditRow
	if err := s.db.SelectContext(ctx, &rows, `SELECT id, tenant_id, quota, old_value, new_value, changed_by, changed_at, reason
		FROM hardening_quota_audit_page($1, $2, $3, $4)`, string(q.Tenant), after, sqlkit.Since(q.Since), size+1); err != nil {
		return tenancy.AuditPage{}, fmt.Errorf("tenancy/postgresstore: audit: %w", err)
	}
	return sqlkit.Page(rows, size), nil
}
