package tenancy

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"time"

	"github.com/systembuilderhub/hardening/internal/problem"
)

// RateLimitPolicy is the policy name of the snapshot rate in the RateLimit
// header fields.
const RateLimitPolicy = "snapshots"

// SetRateLimitHeaders writes the IETF RateLimit header fields (draft-11
// syntax) for a snapshot-rate decision:
//
//	RateLimit-Policy: "snapshots";q=10;w=60
//	RateLimit: "snapshots";r=<remaining>;t=<seconds until the full quota is back>
//
// t is rounded up to whole seconds. Call it for admitted and refused
// requests alike; WriteError adds Retry-After to refusals.
func SetRateLimitHeaders(h http.Header, res RateResult) {
	h.Set("RateLimit-Policy", fmt.Sprintf("%q;q=%d;w=%d", RateLimitPolicy, res.Limit, int64(RatePeriod/time.Second)))
	h.Set("RateLimit", fmt.Sprintf("%q;r=%d;t=%d", RateLimitPolicy, res.Remaining, ceilSeconds(res.ResetAfter)))
}

func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64(math.Ceil(d.Seconds()))
}

// WriteError answers a quota or tenancy error as problem+json:
//
//   - *Rejection: 429 (active previews; snapshot rate with Retry-After) or
//     402 (LLM budget) with reason, current and limit; the budget adds
//     spent, reserved, requested (USD) and resets_at.
//   - ErrNoTenant: 401 tenant_required.
//   - ErrInvalidID: 400 tenant_invalid.
//   - *UnavailableError: 503 quota_store_unavailable with Retry-After 1.
//   - anything else: 500 internal_error (the error text is not sent).
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
		problem.Write(w, r, p.With("resource", string(un.Resource)))
	default:
		problem.Write(w, r, problem.New(http.StatusInternalServerError, "internal_error", "the server failed; the error is logged"))
	}
}

// rejectionProblem builds the problem WriteError writes for rej.
func rejectionProblem(rej *Rejection) problem.Problem {
	switch rej.Resource {
	case ResourceLLMBudget:
		b := rej.Budget
		return problem.New(http.StatusPaymentRequired, rej.Reason, "the monthly LLM budget cannot cover this request").
			With("resource", string(rej.Resource)).
			With("current", Micros(rej.Current).USD()).
			With("limit", b.Budget.USD()).
			With("spent", b.Spent.USD()).
			With("reserved", b.Outstanding.USD()).
			With("requested", b.Requested.USD()).
			With("currency", "USD").
			With("resets_at", b.ResetsAt.UTC().Format(time.RFC3339))
	case ResourceSnapshots:
		p := problem.New(http.StatusTooManyRequests, rej.Reason, "the snapshot rate limit is exhausted").
			With("resource", string(rej.Resource)).With("current", rej.Current).With("limit", rej.Limit)
		p.RetryAfter = rej.RetryAfter
		return p
	default:
		return problem.New(http.StatusTooManyRequests, rej.Reason, "the tenant holds its maximum of active previews").
			With("resource", string(rej.Resource)).With("current", rej.Current).With("limit", rej.Limit)
	}
}
