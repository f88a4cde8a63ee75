package tenancy

import "time"

// RateOption configures Rate.
type RateOption interface{ applyRate(*Quota) }

// ConcurrencyOption configures Concurrency.
type ConcurrencyOption interface{ applyConcurrency(*Quota) }

// BudgetOption configures Budget.
type BudgetOption interface{ applyBudget(*Quota) }

// QuotaOption is the option WithReason and WithFailOpen return: it fits a
// quota of any kind (a RateOption, a ConcurrencyOption and a
// BudgetOption).
type QuotaOption struct{ f func(*Quota) }

func (o QuotaOption) applyRate(q *Quota)        { o.f(q) }
func (o QuotaOption) applyConcurrency(q *Quota) { o.f(q) }
func (o QuotaOption) applyBudget(q *Quota)      { o.f(q) }

type rateOption func(*Quota)

func (o rateOption) applyRate(q *Quota) { o(q) }

type budgetOption func(*Quota)

func (o budgetOption) applyBudget(q *Quota) { o(q) }

// WithReason sets the reason code of the quota's refusals (the problem's
// "reason" member), instead of <name>_rate_exceeded,
// <name>_limit_exceeded or <name>_budget_exceeded. It must be [a-z0-9_]
// starting with a letter.
func WithReason(reason string) QuotaOption {
	return QuotaOption{func(q *Quota) { q.reason = reason }}
}

// WithFailOpen makes the quota allow when its store is unreachable (the
// failure is logged and counted in hardening_quota_store_errors_total).
// Without it the quota fails closed: the check returns an
// *UnavailableError, which answers 503.
func WithFailOpen() QuotaOption {
	return QuotaOption{func(q *Quota) { q.failOpen = true }}
}

// WithBurst sets the burst of a rate for every tenant: how many units may
// be taken at once before the pace of limit per period applies. Without it
// the burst is the tenant's limit.
func WithBurst(n int64) RateOption {
	return rateOption(func(q *Quota) { q.burst, q.burstSet = n, true })
}

// WithReservationTTL sets how long an unsettled reservation of the budget
// holds its amount before it expires and is returned (default
// DefaultReservationTTL). It must exceed the slowest piece of work a
// reservation covers.
func WithReservationTTL(d time.Duration) BudgetOption {
	return budgetOption(func(q *Quota) { q.resTTL = d })
}

// WithCurrency makes the budget's refusals report amounts in a currency:
// the problem's limit, current, spent, reserved and requested members are
// the amount divided by unitsPerCurrency (for Micros: MicrosPerUSD) and a
// "currency" member names code. Without it they are the integer amounts.
func WithCurrency(code string, unitsPerCurrency int64) BudgetOption {
	return budgetOption(func(q *Quota) { q.currency, q.perUnit = code, unitsPerCurrency })
}
