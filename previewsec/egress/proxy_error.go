package egress

import (
	"net/http"
	"time"

	"github.com/systembuilderhub/hardening"
)

// ProxyError is the error a Proxy passes to its error handler
// (WithErrorHandler) when it answers a request itself instead of
// forwarding it: a denied destination or a proxy loop (403), the tunnel
// limit (503), a request that is not a proxy request (400), a destination
// that times out (504) or cannot be reached (502), a CONNECT the server
// cannot hijack (505). Its Problem is the answer the default handler
// writes; on a 403 or 503 the X-Egress-Reason header is already set.
// errors.Is(err, ErrDenied) holds for a policy denial, and the dial error
// of a 502 or 504 is found through Unwrap.
type ProxyError struct {
	// Status is the HTTP status of the answer.
	Status int
	// Reason is the problem reason: a Decision's Reason* code,
	// ReasonProxyLoop, ReasonTunnelLimit, "not_a_proxy_request",
	// "upstream_timeout", "upstream_unreachable" or "connect_unsupported".
	Reason string
	// Detail is the client-facing explanation.
	Detail string
	// Decision is the policy's decision on the destination; zero when the
	// request was refused before one was made.
	Decision Decision

	err error
}

// Error describes the refusal for logs.
func (e *ProxyError) Error() string {
	s := "egress: proxy refused: " + e.Reason
	if e.err != nil {
		s += ": " + e.err.Error()
	}
	return s
}

// Unwrap returns the cause: a *DeniedError or a dial error, if any.
func (e *ProxyError) Unwrap() error { return e.err }

// Problem is the problem+json answer; a 503 carries Retry-After: 1.
func (e *ProxyError) Problem() hardening.Problem {
	p := hardening.NewProblem(e.Status, e.Reason, e.Detail)
	if e.Status == http.StatusServiceUnavailable {
		p.RetryAfter = time.Second
	}
	return p
}

var _ hardening.Error = (*ProxyError)(nil)
