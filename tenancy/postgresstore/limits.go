package postgresstore

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/systembuilderhub/hardening/tenancy"
	"github.com/systembuilderhub/hardening/tenancy/internal/storekit"
)

// override is one row of a tenant's overrides.
type override struct {
	Quota string `db:"o_quota"`
	Value int64  `db:"o_value"`
}

// effective merges a tenant's overrides over defaults, keeping the quotas
// named in defaults.
func effective(rows []override, defaults tenancy.Limits) tenancy.Limits {
	out := make(tenancy.Limits, len(defaults))
	for name, d := range defaults {
		out[name] = d
	}
	for _, r := range rows {
		if _, declared := defaults[r.Quota]; declared {
			out[r.Quota] = r.Value
		}
	}
	return out
}

// Limits implements tenancy.LimitStore.
func (s *Store) Limits(ctx context.Context, tenant tenancy.ID, defaults tenancy.Limits) (tenancy.Limits, error) {
	var rows []override
	if err := s.db.SelectContext(ctx, &rows, `SELECT o_quota, o_value FROM hardening_quota_overrides_of($1)`, string(tenant)); err != nil {
		return nil, fmt.Errorf("tenancy/postgresstore: limits: %w", err)
	}
	return effective(rows, defaults), nil
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
	var rows []override
	if err := s.db.SelectContext(ctx, &rows, `SELECT o_quota, o_value FROM hardening_quota_set_limits($1, $2, $3, $4, $5, $6, $7)`,
		string(req.Tenant), names, defs, vals, req.ChangedBy, req.Reason, req.Now.UnixMilli()); err != nil {
		return nil, fmt.Errorf("tenancy/postgresstore: set limits: %w", err)
	}
	return effective(rows, req.Defaults), nil
}

// Audit implements tenancy.LimitStore. The cursor is the id of the last
// entry of the previous page. An empty q.Tenant reads every tenant's
// entries: the function sets app.cross_tenant for that statement, so it
// works under row-level security.
func (s *Store) Audit(ctx context.Context, q tenancy.AuditQuery) (tenancy.AuditPage, error) {
	var after int64
	if q.Cursor != "" {
		n, err := strconv.ParseInt(q.Cursor, 10, 64)
		if err != nil || n < 0 {
			return tenancy.AuditPage{}, tenancy.ErrBadCursor
		}
		after = n
	}
	size := storekit.PageSize(q.Limit)
	var since int64
	if !q.Since.IsZero() {
		since = q.Since.UnixMilli()
	}
	var rows []struct {
		ID        int64  `db:"id"`
		Tenant    string `db:"tenant_id"`
		Quota     string `db:"quota"`
		Old       int64  `db:"old_value"`
		New       int64  `db:"new_value"`
		ChangedBy string `db:"changed_by"`
		ChangedAt int64  `db:"changed_at"`
		Reason    string `db:"reason"`
	}
	if err := s.db.SelectContext(ctx, &rows, `SELECT id, tenant_id, quota, old_value, new_value, changed_by, changed_at, reason
		FROM hardening_quota_audit_page($1, $2, $3, $4)`, string(q.Tenant), after, since, size+1); err != nil {
		return tenancy.AuditPage{}, fmt.Errorf("tenancy/postgresstore: audit: %w", err)
	}
	var page tenancy.AuditPage
	for i, r := range rows {
		if i == size {
			page.NextCursor = strconv.FormatInt(rows[i-1].ID, 10)
			break
		}
		page.Entries = append(page.Entries, tenancy.AuditEntry{Tenant: tenancy.ID(r.Tenant), Quota: r.Quota, OldValue: r.Old, NewValue: r.New,
			ChangedBy: r.ChangedBy, ChangedAt: time.UnixMilli(r.ChangedAt).UTC(), Reason: r.Reason})
	}
	return page, nil
}
