package tenancy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"time"
)

// Reservation is an amount held from a tenant's budget until it is
// settled, cancelled or expires.
type Reservation struct {
	ID     string
	Tenant ID
	Quota  string
	Amount int64
	// ExpiresAt is when the amount returns if the reservation is not
	// settled.
	ExpiresAt time.Time
	// Result is the budget decision that granted it.
	Result BudgetResult
}

// Reserve holds amount (1 to MaxLimit) from the budget name of the
// context's tenant for the current period. It succeeds only when spent +
// reserved + amount <= limit; otherwise it returns a *Rejection (402).
// Settle or cancel the reservation when the work ends; if the process dies
// first, the reservation expires after the quota's reservation TTL and the
// amount returns.
func (q *Quotas) Reserve(ctx context.Context, name string, amount int64) (Reservation, error) {
	s, tenant, err := q.target(ctx, name, KindBudget)
	if err != nil {
		return Reservation{}, err
	}
	if amount <= 0 || amount > MaxLimit {
		return Reservation{}, errors.New("tenancy: reservation amount must be from 1 to tenancy.MaxLimit")
	}
	s.checks.Inc()
	now := q.now()
	id := newReservationID()
	r := Reservation{ID: id, Tenant: tenant, Quota: name, Amount: amount, ExpiresAt: now.Add(s.resTTL)}
	res, err := q.store.Reserve(ctx, ReserveRequest{Tenant: tenant, Quota: name, ReservationID: id, Amount: amount,
		Period: s.period.Key(now), ResetsAt: s.period.End(now), Now: now, TTL: s.resTTL, DefaultLimit: s.limit})
	if err != nil {
		if err := q.failed(ctx, s, tenant, err); err != nil {
			return Reservation{}, err
		}
		return r, nil
	}
	if !res.Reserved {
		return Reservation{}, q.reject(ctx, s, tenant, budgetRejection(s, res))
	}
	r.ExpiresAt, r.Result = res.ExpiresAt, res
	return r, nil
}

// Settle records actual (0 to MaxLimit) as spent and returns the rest of
// the reservation. An actual above the reservation is recorded as is (and
// logged); the budget guarantee holds when callers reserve the work's
// maximum cost. Found is false when the reservation had already ended
// (settled, cancelled or expired); nothing is recorded then.
func (q *Quotas) Settle(ctx context.Context, r Reservation, actual int64) (SettleResult, error) {
	s, err := q.lookup(r.Quota, KindBudget)
	if err != nil {
		return SettleResult{}, err
	}
	if actual < 0 || actual > MaxLimit {
		return SettleResult{}, errors.New("tenancy: settled amount must be from 0 to tenancy.MaxLimit")
	}
	if actual > r.Amount {
		q.log.WarnContext(ctx, "tenancy: settled amount above its reservation", "quota", r.Quota, "tenant", r.Tenant,
			"reservation", r.ID, "reserved", r.Amount, "actual", actual)
	}
	now := q.now()
	res, err := q.store.Settle(ctx, SettleRequest{Tenant: r.Tenant, Quota: r.Quota, ReservationID: r.ID, Actual: actual, Now: now, Period: s.period.Key(now)})
	if err != nil {
		return SettleResult{}, &UnavailableError{Quota: r.Quota, Err: err}
	}
	if !res.Found {
		q.log.WarnContext(ctx, "tenancy: settling an ended reservation; nothing recorded", "quota", r.Quota, "tenant", r.Tenant,
			"reservation", r.ID, "actual", actual)
	}
	return res, nil
}

// Cancel returns the whole reservation; false when it had already ended.
func (q *Quotas) Cancel(ctx context.Context, r Reservation) (bool, error) {
	if _, err := q.lookup(r.Quota, KindBudget); err != nil {
		return false, err
	}
	ok, err := q.store.Cancel(ctx, r.Tenant, r.Quota, r.ID)
	if err != nil {
		return false, &UnavailableError{Quota: r.Quota, Err: err}
	}
	return ok, nil
}

func newReservationID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
