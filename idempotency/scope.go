package idempotency

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/systembuilderhub/hardening"
)

// ErrNoCaller is the cause of ReasonScopeUnavailable when the default
// scope finds no hardening.Caller with a Subject in the request context.
var ErrNoCaller = errors.New("idempotency: no authenticated caller in the request context")

// DefaultScope is the scope the middleware uses without WithScope: the
// hardening.Caller that authentication (hardening.RequireCaller) put in
// the request context, written as the decimal length of its Tenant, ":",
// the Tenant, "/" and the Subject ("5:acme1/alice"). The length prefix
// makes the encoding unambiguous whatever bytes the tenant and subject
// hold, so tenant "a/b" with subject "c" and tenant "a" with subject "b/c"
// never share records. A request without a Caller, or whose Caller has no
// Subject, has no scope: ErrNoCaller, answered 500
// idempotency_scope_unavailable without running the handler.
func DefaultScope(r *http.Request) (string, error) {
	c, ok := hardening.CallerFrom(r.Context())
	if !ok || c.Subject == "" {
		return "", ErrNoCaller
	}
	return strconv.Itoa(len(c.Tenant)) + ":" + c.Tenant + "/" + c.Subject, nil
}
