package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/systembuilderhub/hardening/internal/sqlitex"
	"github.com/systembuilderhub/hardening/tenancy"
)

func spentIn(ctx context.Context, q queryer, tenant tenancy.ID, quota, period string) (int64, error) {
	return count(ctx, q, `SELECT COALESCE((SELECT spent FROM hardening_quota_spend WHERE tenant_id = ? AND quota = ? AND period = ?), 0)`,
		tenant, quota, period)
}

func reservedIn(ctx context.Context, q queryer, tenant tenancy.ID, quota, period string, now time.Time) (int64, error) {
	return count(ctx, q, `SELECT COALESCE(SUM(amount), 0) FROM hardening_quota_reservations
		WHERE tenant_id = ? AND quota = ? AND period = ? AND expires_at > ?`, tenant, quota, period, now.UnixMilli())
}

// Reserve implements tenancy.BudgetStore.
func (s *Store) Reserve(ctx context.Context, req tenancy.ReserveRequest) (res tenancy.BudgetResult, err error) {
	err = sqlitex.Immediate(ctx, s.db, func(c *sqlx.Conn) error {
		res = tenancy.BudgetResult{Requested: req.Amount, ResetsAt: req.ResetsAt}
		var err error
		if res.Limit, err = limitOf(ctx, c, req.Tenant, req.Quota, req.DefaultLimit); err != nil {
			return err
		}
		if _, err := c.ExecContext(ctx, `DELETE FROM hardening_quota_reservations WHERE tenant_id = ? AND quota = ? AND expires_at <= ?`,
			req.Tenant, req.Quota, req.Now.UnixMilli()); err != nil {
			return err
		}
		if res.Spent, err = spentIn(ctx, c, req.Tenant, req.Quota, req.Period); err != nil {
			return err
		}
		if res.Outstanding, err = reservedIn(ctx, c, req.Tenant, req.Quota, req.Period, req.Now); err != nil {
			return err
		}
		if res.Limit != tenancy.Unlimited && res.Spent+res.Outstanding+req.Amount > res.Limit {
			return nil
		}
		exp := req.Now.Add(req.TTL).UnixMilli()
		if _, err := c.ExecContext(ctx, `INSERT INTO hardening_quota_reservations (tenant_id, quota, id, period, amount, expires_at) VALUES (?, ?, ?, ?, ?, ?)`,
			req.Tenant, req.Quota, req.ReservationID, req.Period, req.Amount, exp); err != nil {
			return err
		}
		res.Reserved, res.ExpiresAt = true, time.UnixMilli(exp)
		res.Outstanding += req.Amount
		return nil
	})
	return res, err
}

// Settle implements tenancy.BudgetStore.
func (s *Store) Settle(ctx context.Context, req tenancy.SettleRequest) (res tenancy.SettleResult, err error) {
	err = sqlitex.Immediate(ctx, s.db, func(c *sqlx.Conn) error {
		res = tenancy.SettleResult{}
		var r struct {
			Period  string `db:"period"`
			Expires int64  `db:"expires_at"`
		}
		err := sqlx.GetContext(ctx, c, &r, `DELETE FROM hardening_quota_reservations WHERE tenant_id = ? AND quota = ? AND id = ?
			RETURNING period, expires_at`, req.Tenant, req.Quota, req.ReservationID)
		period := req.Period
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return err
		case r.Expires > req.Now.UnixMilli():
			res.Found, period = true, r.Period
			if _, err := c.ExecContext(ctx, `INSERT INTO hardening_quota_spend (tenant_id, quota, period, spent) VALUES (?, ?, ?, ?)
				ON CONFLICT (tenant_id, quota, period) DO UPDATE SET spent = spent + excluded.spent`, req.Tenant, req.Quota, period, req.Actual); err != nil {
				return err
			}
		}
		res.Spent, err = spentIn(ctx, c, req.Tenant, req.Quota, period)
		return err
	})
	return res, err
}

// Cancel implements tenancy.BudgetStore.
func (s *Store) Cancel(ctx context.Context, tenant tenancy.ID, quota, reservationID string) (bool, error) {
	return deleteOne(ctx, s.db, `DELETE FROM hardening_quota_reservations WHERE tenant_id = ? AND quota = ? AND id = ?`, tenant, quota, reservationID)
}

// BudgetUsage implements tenancy.BudgetStore. It only reads.
func (s *Store) BudgetUsage(ctx context.Context, tenant tenancy.ID, quota, period string, now time.Time) (tenancy.BudgetUsage, error) {
	spent, err := spentIn(ctx, s.db, tenant, quota, period)
	if err != nil {
		return tenancy.BudgetUsage{}, err
	}
	reserved, err := reservedIn(ctx, s.db, tenant, quota, period, now)
	return tenancy.BudgetUsage{Spent: spent, Reserved: reserved}, err
}
