package tenancy

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"time"

	"github.com/systembuilderhub/hardening"
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

// WriteError answers err as problem+json: an error that is (or wraps) a
// hardening.Error with its Problem, as hardening.WriteError does (every
// error of the package is one: *Rejection, *UnavailableError,
// *TenantError, ErrNoTenant, ErrInvalidID), and anything else,
// ErrUnknownQuota included, with 500 internal_error (the error text is not
// sent). Use it in handlers that call Quotas directly.
func WriteError(w http.ResponseWriter, r *http.Request, err error) {
	var e hardening.Error
	if errors.As(err, &e) {
		hardening.WriteError(w, r, err)
		return
	}
	hardening.WriteProblem(w, r, internalProblem)
}
