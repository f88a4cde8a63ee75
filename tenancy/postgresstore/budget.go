package postgresstore

import (
	"context"
	"time"

	"github.com/systembuilderhub/hardening/tenancy"
)

// Reserve implements tenancy.BudgetStore.
func (s *Store) Reserve(ctx context.Context, req tenancy.ReserveRequest) (tenancy.BudgetResult, error) {
	res := tenancy.BudgetResult{Requested: req.Amount, ResetsAt: req.ResetsAt}
	exp := req.Now.Add(req.TTL).UnixMilli()
	if err := s.scan(ctx, "reserve", `SELECT reserved, quota_limit, spent, outstanding FROM hardening_quota_reserve($1, $2, $3, $4, $5, $6, $7, $8)`,
		[]any{string(req.Tenant), req.Quota, req.ReservationID, req.Period, req.Amount, req.Now.UnixMilli(), exp, req.DefaultLimit},
		&res.Reserved, &res.Limit, &res.Spent, &res.Outstanding); err != nil {
		return tenancy.BudgetResult{}, err
	}
	if res.Reserved {
		res.ExpiresAt = time.UnixMilli(exp)
	}
	return res, nil
}

// Settle implements tenancy.BudgetStore.
func (s *Store) Settle(ctx context.Context, req tenancy.SettleRequest) (tenancy.SettleResult, error) {
	var res tenancy.SettleResult
	err := s.scan(ctx, "settle", `SELECT settled, spent FROM hardening_quota_settle($1, $2, $3, $4, $5, $6)`,
		[]any{string(req.Tenant), req.Quota, req.ReservationID, req.Actual, req.Now.UnixMilli(), req.Period}, &res.Found, &res.Spent)
	if err != nil {
		return tenancy.SettleResult{}, err
	}
	return res, nil
}

// Cancel implements tenancy.BudgetStore.
func (s *Store) Cancel(ctx context.Context, tenant tenancy.ID, quota, reservationID string) (bool, error) {
	var ok bool
	err := s.scan(ctx, "cancel", `SELECT hardening_quota_cancel($1, $2, $3)`, []any{string(tenant), quota, reservationID}, &ok)
	return ok, err
}

// BudgetUsage implements tenancy.BudgetStore. It only reads.
func (s *Store) BudgetUsage(ctx context.Context, tenant tenancy.ID, quota, period string, now time.Time) (tenancy.BudgetUsage, error) {
	var u tenancy.BudgetUsage
	if err := s.scan(ctx, "budget usage", `SELECT spent, reserved FROM hardening_quota_budget_usage($1, $2, $3, $4)`,
		[]any{string(tenant), quota, period, now.UnixMilli()}, &u.Spent, &u.Reserved); err != nil {
		return tenancy.BudgetUsage{}, err
	}
	return u, nil
}
