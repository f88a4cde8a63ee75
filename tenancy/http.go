package tenancy

import (
	"errors"
	"math"
	"net/http"
	"strconv"
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
	// Both values are built in one buffer and share one string and one
	// slice: two allocations on every rated request instead of nine.
	var buf [160]byte
	b := strconv.AppendQuote(buf[:0], res.Quota)
	b = strconv.AppendInt(append(b, ";q="...), res.Limit, 10)
	b = strconv.AppendInt(append(b, ";w="...), ceilSeconds(res.Period), 10)
	cut := len(b)
	b = strconv.AppendQuote(b, res.Quota)
	b = strconv.AppendInt(append(b, ";r="...), res.Remaining, 10)
	b = strconv.AppendInt(append(b, ";t="...), ceilSeconds(res.ResetAfter), 10)
	v := string(b)
	vals := []string{v[:cut], v[cut:]}
	h[headerRateLimitPolicy] = vals[0:1:1]
	h[headerRateLimit] = vals[1:2:2]
}

// The RateLimit header fields in canonical form (what Header.Set would
// store them as), so setting them does not canonicalise on every request.
const (
	headerRateLimitPolicy = "Ratelimit-Policy"
	headerRateLimit       = "Ratelimit"
)

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
