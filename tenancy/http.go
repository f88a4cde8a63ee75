package tenancy

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"time"

	"github.com/systembuilderhub/hardening/internal/problem"
)

// SetRateLimitHeaders writes the IETF RateLimit header fields (draft-11
// syntax) of a rate decision, named by the quota:
//
//	RateLimit-Policy: "orders";q=<limit>;w=<period in seconds>
//	RateLimit: "orders";r=<remaining>;t=<seconds until the full burst is back>
//
// t and w are rounded up to whole seconds. Call it for admitted and
// refused requests alike; WriteError adds Retry-After to refusals. It
// writes nothing for a result without a quota name (a store error) or an
// Unlimited rate.
func SetRateLimitHeaders(h http.Header, res RateResult) {
	if res.Quota == "" || res.Limit == Unlimited {
		return
	}
	h.Set("RateLimit-Policy", fmt.Sprintf("%q;q=%d;w=%d", res.Quota, res.Limit, ceilSeconds(res.Period)))
	h.Set("RateLimit", fmt.Sprintf("%q;r=%d;t=%d", res.Quota, res.Remaining, ceilSeconds(res.ResetAfter)))
}

func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64(math.Ceil(d.Seconds()))
}

// WriteError answers a quota or tenancy error as problem+json:
//
//   - *Rejection: 429 for a rate (with Retry-After) or a concurrency
//     quota, 402 for a budget, with reason, resource (the quota name),
//     current and limit; a budget adds spent, reserved, requested and
//     resets_at (and currency with WithCurrency).
//   - ErrNoTenant: 401 tenant_required.
//   - ErrInvalidID: 400 tenant_invalid.
//   - *UnavailableError: 503 quota_store_unavailable with Retry-After 1.
//   - anything else, ErrUnknownQuota included: 500 internal_error (the
//     error text is not sent).
func WriteError(w http.ResponseWriter, r *http.Request, err error) {
	var rej *Rejection
	var un *UnavailableError
	switch {
	case errors.As(err, &rej):
		problem.Write(w, r, rejectionProblem(rej))
	case errors.Is(err, ErrNoTenant):
		problem.Write(w, r, problem.New(http.StatusUnauthorized, "tenant_required", "the request carries no verified tenant"))
	case errors.Is(err, ErrInvalidID):
		problem.Write(w, r, problem.New(http.StatusBadRequest, "tenant_invalid", "the tenant id is malformed"))
	case errors.As(err, &un):
		p := problem.New(http.StatusServiceUnavailable, "quota_store_unavailable", "the quota store is unreachable; try again")
		p.RetryAfter = time.Second
		problem.Write(w, r, p.With("resource", un.Quota))
	default:
		problem.Write(w, r, problem.New(http.StatusInternalServerError, "internal_error", "the server failed; the error is logged"))
	}
}

// rejectionProblem builds the problem WriteError writes for rej.
func rejectionProblem(rej *Rejection) problem.Problem {
	switch rej.Kind {
	case KindBudget:
		b := rej.Budget
		amount := func(v int64) any { return v }
		if rej.UnitsPerCurrency > 0 {
			amount = func(v int64) any { return float64(v) / float64(rej.UnitsPerCurrency) }
		}
		p := problem.New(http.StatusPaymentRequired, rej.Reason, fmt.Sprintf("the %q budget cannot cover this request", rej.Quota)).
			With("resource", rej.Quota).
			With("current", amount(rej.Current)).
			With("limit", amount(b.Limit)).
			With("spent", amount(b.Spent)).
			With("reserved", amount(b.Outstanding)).
			With("requested", amount(b.Requested)).
			With("resets_at", b.ResetsAt.UTC().Format(time.RFC3339))
		if rej.Currency != "" {
			p = p.With("currency", rej.Currency)
		}
		return p
	case KindRate:
		p := problem.New(http.StatusTooManyRequests, rej.Reason, fmt.Sprintf("the %q rate limit is exhausted", rej.Quota)).
			With("resource", rej.Quota).With("current", rej.Current).With("limit", rej.Limit)
		p.RetryAfter = rej.RetryAfter
		return p
	default:
		return problem.New(http.StatusTooManyRequests, rej.Reason, fmt.Sprintf("the tenant holds all of its %q slots", rej.Quota)).
			With("resource", rej.Quota).With("current", rej.Current).With("limit", rej.Limit)
	}
}
