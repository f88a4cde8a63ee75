package tenancy

import (
	"fmt"
	"time"
)

// Rejection is the error of a check the quota refused. It carries what the
// problem response reports; WriteError answers it (429 for rates and
// concurrency, 402 for budgets).
type Rejection struct {
	// Quota is the quota's name, Kind its kind.
	Quota string
	Kind  Kind
	// Reason is the problem's reason code (Quota.Reason).
	Reason string
	// Current is the consumption at the time of the check: units of the
	// burst in use, slots held, or spent + reserved.
	Current int64
	// Limit is the tenant's limit.
	Limit int64
	// RetryAfter is set for rates.
	RetryAfter time.Duration
	// Rate is the full decision of a rate.
	Rate RateResult
	// Budget is the full decision of a budget.
	Budget BudgetResult
	// Currency and UnitsPerCurrency come from WithCurrency: WriteError
	// then reports the budget's amounts in the currency.
	Currency         string
	UnitsPerCurrency int64
}

// Error implements error. The text names the quota.
func (r *Rejection) Error() string {
	switch r.Kind {
	case KindRate:
		return fmt.Sprintf("tenancy: rate %q exhausted (%d of %d in use; retry in %v)", r.Quota, r.Current, r.Limit, r.RetryAfter)
	case KindBudget:
		return fmt.Sprintf("tenancy: budget %q cannot cover %d (%d spent + %d reserved of %d)", r.Quota,
			r.Budget.Requested, r.Budget.Spent, r.Budget.Outstanding, r.Limit)
	}
	return fmt.Sprintf("tenancy: concurrency %q at its limit (%d of %d held)", r.Quota, r.Current, r.Limit)
}

// UnavailableError reports that the quota store failed and the quota is
// fail-closed. WriteError answers 503 quota_store_unavailable.
type UnavailableError struct {
	Quota string
	Err   error
}

// Error implements error.
func (e *UnavailableError) Error() string {
	return fmt.Sprintf("tenancy: quota store unavailable for %s: %v", e.Quota, e.Err)
}

// Unwrap returns the store's error.
func (e *UnavailableError) Unwrap() error { return e.Err }

func rateRejection(q *quotaState, res RateResult) *Rejection {
	return &Rejection{Quota: q.name, Kind: KindRate, Reason: q.reasonCode, Current: res.Burst - res.Remaining,
		Limit: res.Limit, RetryAfter: res.RetryAfter, Rate: res}
}

func slotRejection(q *quotaState, res SlotResult) *Rejection {
	return &Rejection{Quota: q.name, Kind: KindConcurrency, Reason: q.reasonCode, Current: res.Current, Limit: res.Limit}
}

func budgetRejection(q *quotaState, res BudgetResult) *Rejection {
	return &Rejection{Quota: q.name, Kind: KindBudget, Reason: q.reasonCode, Current: res.Spent + res.Outstanding,
		Limit: res.Limit, Budget: res, Currency: q.currency, UnitsPerCurrency: q.perUnit}
}
