package redisstore

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/systembuilderhub/hardening/tenancy"
)

func (s *Store) budgetKeys(t tenancy.ID, quota string) []string {
	return []string{s.key(t, "budget:"+quota+":res"), s.key(t, "budget:"+quota+":spent")}
}

// Reserve implements tenancy.BudgetStore.
func (s *Store) Reserve(ctx context.Context, req tenancy.ReserveRequest) (tenancy.BudgetResult, error) {
	if strings.Contains(req.ReservationID, "|") || strings.Contains(req.Period, "|") {
		return tenancy.BudgetResult{}, errors.New("tenancy/redisstore: reservation id and period must not contain '|'")
	}
	exp := req.Now.Add(req.TTL).UnixMilli()
	r, err := ints(reserveScript.Run(ctx, s.rdb, append(s.budgetKeys(req.Tenant, req.Quota), s.key(req.Tenant, "limits")),
		req.ReservationID, req.Amount, req.Now.UnixMilli(), exp, req.Period, req.Quota, req.DefaultLimit).Result())
	if err != nil {
		return tenancy.BudgetResult{}, err
	}
	res := tenancy.BudgetResult{Reserved: r[0] == 1, Limit: r[1], Spent: r[2], Outstanding: r[3], Requested: req.Amount, ResetsAt: req.ResetsAt}
	if res.Reserved {
		res.ExpiresAt = time.UnixMilli(exp)
	}
	return res, nil
}

// Settle implements tenancy.BudgetStore.
func (s *Store) Settle(ctx context.Context, req tenancy.SettleRequest) (tenancy.SettleResult, error) {
	r, err := ints(settleScript.Run(ctx, s.rdb, s.budgetKeys(req.Tenant, req.Quota),
		req.ReservationID, req.Actual, req.Now.UnixMilli(), req.Period, spentTTL.Milliseconds()).Result())
	if err != nil {
		return tenancy.SettleResult{}, err
	}
	return tenancy.SettleResult{Found: r[0] == 1, Spent: r[1]}, nil
}

// Cancel implements tenancy.BudgetStore.
func (s *Store) Cancel(ctx context.Context, tenant tenancy.ID, quota, reservationID string) (bool, error) {
	n, err := s.rdb.HDel(ctx, s.budgetKeys(tenant, quota)[0], reservationID).Result()
	return n == 1, err
}

// BudgetUsage implements tenancy.BudgetStore (one read-only script).
func (s *Store) BudgetUsage(ctx context.Context, tenant tenancy.ID, quota, period string, now time.Time) (tenancy.BudgetUsage, error) {
	r, err := ints(budgetUsageScript.Run(ctx, s.rdb, s.budgetKeys(tenant, quota), period, now.UnixMilli()).Result())
	if err != nil {
		return tenancy.BudgetUsage{}, err
	}
	return tenancy.BudgetUsage{Spent: r[0], Reserved: r[1]}, nil
}
