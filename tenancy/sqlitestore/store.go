// Package sqlitestore is a tenancy.Store on SQLite. Every state change is
// one BEGIN IMMEDIATE transaction (sqlitex.Immediate), so several
// processes sharing one database file decide consistently: the semaphore,
// the rate and the budget are never over-granted. The tables come from the
// kit's migrations (migrate.Up); the store never creates them.
package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/systembuilderhub/hardening/internal/sqlitex"
	"github.com/systembuilderhub/hardening/tenancy"
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

type overrides struct {
	Active sql.NullInt64 `db:"active_previews"`
	Rate   sql.NullInt64 `db:"snapshots_per_minute"`
	Budget sql.NullInt64 `db:"llm_monthly_budget_micros"`
}

func limitsOf(ctx context.Context, q queryer, tenant tenancy.ID, d tenancy.Limits) (tenancy.Limits, error) {
	var o overrides
	err := sqlx.GetContext(ctx, q, &o, `SELECT active_previews, snapshots_per_minute, llm_monthly_budget_micros
		FROM hardening_quota_limits WHERE tenant_id = ?`, tenant)
	if errors.Is(err, sql.ErrNoRows) {
		return d, nil
	}
	if err != nil {
		return tenancy.Limits{}, err
	}
	if o.Active.Valid {
		d.ActivePreviews = o.Active.Int64
	}
	if o.Rate.Valid {
		d.SnapshotsPerMinute = o.Rate.Int64
	}
	if o.Budget.Valid {
		d.LLMMonthlyBudget = tenancy.Micros(o.Budget.Int64)
	}
	return d, nil
}

func count(ctx context.Context, q queryer, query string, args ...any) (int64, error) {
	var n int64
	err := sqlx.GetContext(ctx, q, &n, query, args...)
	return n, err
}

// AcquireSlot implements tenancy.Store.
func (s *Store) AcquireSlot(ctx context.Context, req tenancy.SlotRequest) (res tenancy.SlotResult, err error) {
	now := req.Now.UnixMilli()
	err = sqlitex.Immediate(ctx, s.db, func(c *sqlx.Conn) error {
		res = tenancy.SlotResult{}
		if _, err := c.ExecContext(ctx, `DELETE FROM hardening_active_previews WHERE tenant_id = ? AND lease_expires_at <= ?`, req.Tenant, now); err != nil {
			return err
		}
		l, err := limitsOf(ctx, c, req.Tenant, tenancy.Limits{ActivePreviews: req.DefaultLimit})
		if err != nil {
			return err
		}
		res.Limit = l.ActivePreviews
		held, err := count(ctx, c, `SELECT count(*) FROM hardening_active_previews WHERE tenant_id = ? AND preview_id = ?`, req.Tenant, req.PreviewID)
		if err != nil {
			return err
		}
		if res.Current, err = count(ctx, c, `SELECT count(*) FROM hardening_active_previews WHERE tenant_id = ?`, req.Tenant); err != nil {
			return err
		}
		if held == 0 && res.Current >= res.Limit {
			return nil
		}
		exp := req.Now.Add(req.Lease).UnixMilli()
		if _, err := c.ExecContext(ctx, `INSERT INTO hardening_active_previews (tenant_id, preview_id, lease_expires_at) VALUES (?, ?, ?)
			ON CONFLICT (tenant_id, preview_id) DO UPDATE SET lease_expires_at = excluded.lease_expires_at`, req.Tenant, req.PreviewID, exp); err != nil {
			return err
		}
		res.Held = true
		res.ExpiresAt = time.UnixMilli(exp)
		if held == 0 {
			res.Current++
		}
		return nil
	})
	return res, err
}

// RenewSlot implements tenancy.Store.
func (s *Store) RenewSlot(ctx context.Context, req tenancy.SlotRequest) (res tenancy.SlotResult, err error) {
	now := req.Now.UnixMilli()
	err = sqlitex.Immediate(ctx, s.db, func(c *sqlx.Conn) error {
		res = tenancy.SlotResult{}
		if _, err := c.ExecContext(ctx, `DELETE FROM hardening_active_previews WHERE tenant_id = ? AND lease_expires_at <= ?`, req.Tenant, now); err != nil {
			return err
		}
		exp := req.Now.Add(req.Lease).UnixMilli()
		r, err := c.ExecContext(ctx, `UPDATE hardening_active_previews SET lease_expires_at = ? WHERE tenant_id = ? AND preview_id = ?`, exp, req.Tenant, req.PreviewID)
		if err != nil {
			return err
		}
		if n, _ := r.RowsAffected(); n == 1 {
			res.Held = true
			res.ExpiresAt = time.UnixMilli(exp)
		}
		res.Current, err = count(ctx, c, `SELECT count(*) FROM hardening_active_previews WHERE tenant_id = ?`, req.Tenant)
		return err
	})
	return res, err
}

// ReleaseSlot implements tenancy.Store.
func (s *Store) ReleaseSlot(ctx context.Context, tenant tenancy.ID, previewID string) (bool, error) {
	r, err := s.db.ExecContext(ctx, `DELETE FROM hardening_active_previews WHERE tenant_id = ? AND preview_id = ?`, tenant, previewID)
	if err != nil {
		return false, err
	}
	n, err := r.RowsAffected()
	return n == 1, err
}

// TakeRate implements tenancy.Store.
func (s *Store) TakeRate(ctx context.Context, req tenancy.RateRequest) (res tenancy.RateResult, err error) {
	err = sqlitex.Immediate(ctx, s.db, func(c *sqlx.Conn) error {
		l, err := limitsOf(ctx, c, req.Tenant, tenancy.Limits{SnapshotsPerMinute: req.DefaultLimit})
		if err != nil {
			return err
		}
		var tat int64
		err = sqlx.GetContext(ctx, c, &tat, `SELECT tat FROM hardening_rate_gcra WHERE tenant_id = ? AND resource = ?`, req.Tenant, req.Resource)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		newTat, r := tenancy.GCRA(tat, req.Now.UnixMicro(), l.SnapshotsPerMinute)
		res = r
		if !r.Allowed {
			return nil
		}
		_, err = c.ExecContext(ctx, `INSERT INTO hardening_rate_gcra (tenant_id, resource, tat) VALUES (?, ?, ?)
			ON CONFLICT (tenant_id, resource) DO UPDATE SET tat = excluded.tat`, req.Tenant, req.Resource, newTat)
		return err
	})
	return res, err
}

func budgetState(ctx context.Context, q queryer, tenant tenancy.ID, month string, now int64) (spent, outstanding tenancy.Micros, err error) {
	if _, err = q.ExecContext(ctx, `DELETE FROM hardening_llm_reservations WHERE tenant_id = ? AND expires_at <= ?`, tenant, now); err != nil {
		return 0, 0, err
	}
	var sp, out int64
	if sp, err = count(ctx, q, `SELECT COALESCE((SELECT spent_micros FROM hardening_llm_usage WHERE tenant_id = ? AND month = ?), 0)`, tenant, month); err != nil {
		return 0, 0, err
	}
	if out, err = count(ctx, q, `SELECT COALESCE(SUM(amount_micros), 0) FROM hardening_llm_reservations WHERE tenant_id = ? AND month = ?`, tenant, month); err != nil {
		return 0, 0, err
	}
	return tenancy.Micros(sp), tenancy.Micros(out), nil
}

// Reserve implements tenancy.Store.
func (s *Store) Reserve(ctx context.Context, req tenancy.ReserveRequest) (res tenancy.BudgetResult, err error) {
	month := tenancy.Month(req.Now)
	err = sqlitex.Immediate(ctx, s.db, func(c *sqlx.Conn) error {
		l, err := limitsOf(ctx, c, req.Tenant, tenancy.Limits{LLMMonthlyBudget: req.DefaultBudget})
		if err != nil {
			return err
		}
		spent, out, err := budgetState(ctx, c, req.Tenant, month, req.Now.UnixMilli())
		if err != nil {
			return err
		}
		res = tenancy.BudgetResult{Budget: l.LLMMonthlyBudget, Spent: spent, Outstanding: out, Requested: req.Amount, ResetsAt: tenancy.MonthEnd(req.Now)}
		if spent+out+req.Amount > l.LLMMonthlyBudget {
			return nil
		}
		exp := req.Now.Add(req.TTL).UnixMilli()
		if _, err := c.ExecContext(ctx, `INSERT INTO hardening_llm_reservations (tenant_id, id, month, amount_micros, expires_at) VALUES (?, ?, ?, ?, ?)`,
			req.Tenant, req.ReservationID, month, req.Amount, exp); err != nil {
			return err
		}
		res.Reserved = true
		res.Outstanding += req.Amount
		res.ExpiresAt = time.UnixMilli(exp)
		return nil
	})
	return res, err
}

// Settle implements tenancy.Store.
func (s *Store) Settle(ctx context.Context, req tenancy.SettleRequest) (res tenancy.SettleResult, err error) {
	err = sqlitex.Immediate(ctx, s.db, func(c *sqlx.Conn) error {
		res = tenancy.SettleResult{}
		var r struct {
			Month   string `db:"month"`
			Expires int64  `db:"expires_at"`
		}
		err := sqlx.GetContext(ctx, c, &r, `DELETE FROM hardening_llm_reservations WHERE tenant_id = ? AND id = ? RETURNING month, expires_at`, req.Tenant, req.ReservationID)
		month := tenancy.Month(req.Now)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return err
		case r.Expires > req.Now.UnixMilli():
			res.Found = true
			month = r.Month
			if _, err := c.ExecContext(ctx, `INSERT INTO hardening_llm_usage (tenant_id, month, spent_micros) VALUES (?, ?, ?)
				ON CONFLICT (tenant_id, month) DO UPDATE SET spent_micros = spent_micros + excluded.spent_micros`, req.Tenant, month, req.Actual); err != nil {
				return err
			}
		}
		sp, err := count(ctx, c, `SELECT COALESCE((SELECT spent_micros FROM hardening_llm_usage WHERE tenant_id = ? AND month = ?), 0)`, req.Tenant, month)
		res.Spent = tenancy.Micros(sp)
		return err
	})
	return res, err
}

// Cancel implements tenancy.Store.
func (s *Store) Cancel(ctx context.Context, tenant tenancy.ID, reservationID string) (bool, error) {
	r, err := s.db.ExecContext(ctx, `DELETE FROM hardening_llm_reservations WHERE tenant_id = ? AND id = ?`, tenant, reservationID)
	if err != nil {
		return false, err
	}
	n, err := r.RowsAffected()
	return n == 1, err
}

// Limits implements tenancy.Store.
func (s *Store) Limits(ctx context.Context, tenant tenancy.ID, defaults tenancy.Limits) (tenancy.Limits, error) {
	return limitsOf(ctx, s.db, tenant, defaults)
}

// UpdateLimits implements tenancy.Store: the overrides and their audit rows
// are written in one transaction.
func (s *Store) UpdateLimits(ctx context.Context, req tenancy.UpdateRequest) (l tenancy.Limits, err error) {
	now := req.Now.UnixMilli()
	err = sqlitex.Immediate(ctx, s.db, func(c *sqlx.Conn) error {
		old, err := limitsOf(ctx, c, req.Tenant, req.Defaults)
		if err != nil {
			return err
		}
		p := req.Patch
		var budget *int64
		if p.LLMMonthlyBudget != nil {
			b := int64(*p.LLMMonthlyBudget)
			budget = &b
		}
		if _, err := c.ExecContext(ctx, `INSERT INTO hardening_quota_limits (tenant_id, active_previews, snapshots_per_minute, llm_monthly_budget_micros, updated_at)
			VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (tenant_id) DO UPDATE SET
				active_previews = COALESCE(excluded.active_previews, active_previews),
				snapshots_per_minute = COALESCE(excluded.snapshots_per_minute, snapshots_per_minute),
				llm_monthly_budget_micros = COALESCE(excluded.llm_monthly_budget_micros, llm_monthly_budget_micros),
				updated_at = excluded.updated_at`,
			req.Tenant, p.ActivePreviews, p.SnapshotsPerMinute, budget, now); err != nil {
			return err
		}
		audit := func(field string, o, n int64) error {
			_, err := c.ExecContext(ctx, `INSERT INTO hardening_quota_audit (tenant_id, field, old_value, new_value, changed_by, changed_at, reason)
				VALUES (?, ?, ?, ?, ?, ?, ?)`, req.Tenant, field, o, n, req.ChangedBy, now, req.Reason)
			return err
		}
		if p.ActivePreviews != nil {
			if err := audit(tenancy.FieldActivePreviews, old.ActivePreviews, *p.ActivePreviews); err != nil {
				return err
			}
		}
		if p.SnapshotsPerMinute != nil {
			if err := audit(tenancy.FieldSnapshotsPerMinute, old.SnapshotsPerMinute, *p.SnapshotsPerMinute); err != nil {
				return err
			}
		}
		if budget != nil {
			if err := audit(tenancy.FieldLLMMonthlyBudget, int64(old.LLMMonthlyBudget), *budget); err != nil {
				return err
			}
		}
		l, err = limitsOf(ctx, c, req.Tenant, req.Defaults)
		return err
	})
	return l, err
}

// Usage implements tenancy.Store. It only reads.
func (s *Store) Usage(ctx context.Context, tenant tenancy.ID, now time.Time, defaults tenancy.Limits) (tenancy.Usage, error) {
	var u tenancy.Usage
	var err error
	nowMs := now.UnixMilli()
	month := tenancy.Month(now)
	if u.ActivePreviews, err = count(ctx, s.db, `SELECT count(*) FROM hardening_active_previews WHERE tenant_id = ? AND lease_expires_at > ?`, tenant, nowMs); err != nil {
		return u, err
	}
	l, err := limitsOf(ctx, s.db, tenant, defaults)
	if err != nil {
		return u, err
	}
	tat, err := count(ctx, s.db, `SELECT COALESCE((SELECT tat FROM hardening_rate_gcra WHERE tenant_id = ? AND resource = ?), 0)`, tenant, tenancy.ResourceSnapshots)
	if err != nil {
		return u, err
	}
	u.SnapshotsLastMinute = tenancy.GCRAUsed(tat, now.UnixMicro(), l.SnapshotsPerMinute)
	sp, err := count(ctx, s.db, `SELECT COALESCE((SELECT spent_micros FROM hardening_llm_usage WHERE tenant_id = ? AND month = ?), 0)`, tenant, month)
	if err != nil {
		return u, err
	}
	out, err := count(ctx, s.db, `SELECT COALESCE(SUM(amount_micros), 0) FROM hardening_llm_reservations WHERE tenant_id = ? AND month = ? AND expires_at > ?`, tenant, month, nowMs)
	u.LLMSpent, u.LLMReserved = tenancy.Micros(sp), tenancy.Micros(out)
	return u, err
}

// Audit implements tenancy.Store. The cursor is the id of the last entry
// of the previous page.
func (s *Store) Audit(ctx context.Context, q tenancy.AuditQuery) (tenancy.AuditPage, error) {
	var after int64
	if q.Cursor != "" {
		n, err := strconv.ParseInt(q.Cursor, 10, 64)
		if err != nil || n < 0 {
			return tenancy.AuditPage{}, tenancy.ErrBadCursor
		}
		after = n
	}
	size := tenancy.PageSize(q.Limit)
	var since int64
	if !q.Since.IsZero() {
		since = q.Since.UnixMilli()
	}
	var rows []struct {
		ID        int64  `db:"id"`
		Tenant    string `db:"tenant_id"`
		Field     string `db:"field"`
		Old       int64  `db:"old_value"`
		New       int64  `db:"new_value"`
		ChangedBy string `db:"changed_by"`
		ChangedAt int64  `db:"changed_at"`
		Reason    string `db:"reason"`
	}
	err := s.db.SelectContext(ctx, &rows, `SELECT id, tenant_id, field, old_value, new_value, changed_by, changed_at, reason
		FROM hardening_quota_audit
		WHERE id > ? AND (? = '' OR tenant_id = ?) AND changed_at >= ?
		ORDER BY id LIMIT ?`, after, q.Tenant, q.Tenant, since, size+1)
	if err != nil {
		return tenancy.AuditPage{}, fmt.Errorf("tenancy/sqlitestore: audit: %w", err)
	}
	var page tenancy.AuditPage
	for i, r := range rows {
		if i == size {
			page.NextCursor = strconv.FormatInt(rows[i-1].ID, 10)
			break
		}
		page.Entries = append(page.Entries, tenancy.AuditEntry{Tenant: tenancy.ID(r.Tenant), Field: r.Field, OldValue: r.Old, NewValue: r.New,
			ChangedBy: r.ChangedBy, ChangedAt: time.UnixMilli(r.ChangedAt).UTC(), Reason: r.Reason})
	}
	return page, nil
}
