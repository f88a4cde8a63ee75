package tenancy

import (
	"fmt"
	"net/http"
	"time"

	"github.com/systembuilderhub/hardening"
)

// Every error the package answers with over HTTP implements
// hardening.Error: its Problem is the problem+json the default error
// handler (hardening.WriteError) writes. A custom handler finds the typed
// value with errors.As (*Rejection, *UnavailableError, *TenantError).
var (
	_ hardening.Error = (*Rejection)(nil)
	_ hardening.Error = (*UnavailableError)(nil)
	_ hardening.Error = (*TenantError)(nil)
)

// Rejection is the error of a check the quota refused. It carries what the
// problem response reports; its Problem is a 429 for rates and
// concurrency, a 402 for budgets.
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
	// Currency and UnitsPerCurrency come from WithCurrency: the problem
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

// Problem implements hardening.Error: 429 for a rate (with Retry-After) or
// a concurrency quota, 402 for a budget, with reason, resource (the quota
// name), current and limit; a budget adds spent, reserved, requested and
// resets_at (and currency with WithCurrency).
func (r *Rejection) Problem() hardening.Problem {
	switch r.Kind {
	case KindBudget:
		b := r.Budget
		amount := func(v int64) any { return v }
		if r.UnitsPerCurrency > 0 {
			amount = func(v int64) any { return float64(v) / float64(r.UnitsPerCurrency) }
		}
		p := hardening.NewProblem(http.StatusPaymentRequired, r.Reason, fmt.Sprintf("the %q budget cannot cover this request", r.Quota)).
			With("resource", r.Quota).
			With("current", amount(r.Current)).
			With("limit", amount(b.Limit)).
			With("spent", amount(b.Spent)).
			With("reserved", amount(b.Outstanding)).
			With("requested", amount(b.Requested)).
			With("resets_at", b.ResetsAt.UTC().Format(time.RFC3339))
		if r.Currency != "" {
			p = p.With("currency", r.Currency)
		}
		return p
	case KindRate:
		p := hardening.NewProblem(http.StatusTooManyRequests, r.Reason, fmt.Sprintf("the %q rate limit is exhausted", r.Quota)).
			With("resource", r.Quota).With("current", r.Current).With("limit", r.Limit)
		p.RetryAfter = r.RetryAfter
		return p
	default:
		return hardening.NewProblem(http.StatusTooManyRequests, r.Reason, fmt.Sprintf("the tenant holds all of its %q slots", r.Quota)).
			With("resource", r.Quota).With("current", r.Current).With("limit", r.Limit)
	}
}

// UnavailableError reports that the quota store failed and the quota is
// fail-closed. Its Problem is a 503 quota_store_unavailable with
// Retry-After 1 naming the quota (resource); the store's error is not
// sent.
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

// Problem implements hardening.Error.
func (e *UnavailableError) Problem() hardening.Problem {
	p := hardening.NewProblem(http.StatusServiceUnavailable, "quota_store_unavailable", "the quota store is unreachable; try again")
	p.RetryAfter = time.Second
	return p.With("resource", e.Quota)
}

// Reasons of a TenantError.
const (
	// ReasonTenantRequired: the request carries no verified tenant (401).
	ReasonTenantRequired = "tenant_required"
	// ReasonTenantInvalid: the tenant id is malformed (403).
	ReasonTenantInvalid = "tenant_invalid"
	// ReasonTenantMismatch: a trusted tenant header contradicts the
	// verified identity (403).
	ReasonTenantMismatch = "tenant_mismatch"
)

// TenantError is the tenant middleware's refusal of a request: no
// verified tenant (ReasonTenantRequired, 401), a malformed one
// (ReasonTenantInvalid, 403) or a trusted header contradicting the
// identity (ReasonTenantMismatch, 403). Err is the cause (the identity
// function's error, ErrNoTenant, an ErrInvalidID); it is logged, never
// sent.
type TenantError struct {
	Reason string
	Err    error
}

// Error implements error.
func (e *TenantError) Error() string {
	if e.Err == nil {
		return "tenancy: " + e.Reason
	}
	return "tenancy: " + e.Reason + ": " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *TenantError) Unwrap() error { return e.Err }

// Problem implements hardening.Error.
func (e *TenantError) Problem() hardening.Problem {
	switch e.Reason {
	case ReasonTenantInvalid:
		return hardening.NewProblem(http.StatusForbidden, e.Reason, "the tenant id is malformed")
	case ReasonTenantMismatch:
		return hardening.NewProblem(http.StatusForbidden, e.Reason, "the tenant header does not match the verified identity")
	}
	return hardening.NewProblem(http.StatusUnauthorized, ReasonTenantRequired, "the request carries no verified tenant")
}

// problemError is a sentinel error that is also a hardening.Error:
// ErrNoTenant and ErrInvalidID, so a handler answering them with
// hardening.WriteError gives the right status.
type problemError struct {
	msg string
	p   hardening.Problem
}

func (e *problemError) Error() string              { return e.msg }
func (e *problemError) Problem() hardening.Problem { return e.p }

func newProblemError(msg string, status int, reason, detail string) error {
	return &problemError{msg: msg, p: hardening.NewProblem(status, reason, detail)}
}

// internalProblem is what WriteError answers for an error that is not a
// hardening.Error.
var internalProblem = hardening.NewProblem(http.StatusInternalServerError, "internal_error", "the server failed; the error is logged")

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
