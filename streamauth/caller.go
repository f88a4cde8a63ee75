package streamauth

import (
	"context"
	"errors"

	"github.com/systembuilderhub/hardening"
)

// The stream handlers take a [hardening.Authenticator]: the same value a
// service passes to [hardening.RequireCaller] for its REST routes. It
// returns an error wrapping [ErrNoCredentials], [ErrTokenExpired] or
// [ErrInvalidToken] when the caller is not authenticated (answered 401), or
// [ErrUnavailable] when the backend it needs failed (answered 503). Any
// other error is answered 401 as well: authentication fails closed.

// TokenAuthenticator is an optional interface of a [hardening.Authenticator]
// that can check a raw token, as WebSocket in-band refresh needs.
// Authenticators that do not implement it are given a request carrying only
// "Authorization: Bearer <token>".
type TokenAuthenticator interface {
	AuthenticateToken(ctx context.Context, token string) (hardening.Caller, error)
}

// Authentication errors. Authenticators wrap them; the stream handlers map
// them to the problem's reason.
var (
	// ErrNoCredentials means the request carried no token.
	ErrNoCredentials = errors.New("streamauth: no credentials")
	// ErrTokenExpired means the token is past its expiry.
	ErrTokenExpired = errors.New("streamauth: token expired")
	// ErrInvalidToken means the token is malformed, badly signed or lacks
	// required claims.
	ErrInvalidToken = errors.New("streamauth: invalid token")
	// ErrRevoked means the credential was issued before a revocation of
	// its user or tenant (Registry.Revoke).
	ErrRevoked = errors.New("streamauth: credential revoked")
	// ErrUnavailable means the authentication backend failed; the request
	// is answered 503.
	ErrUnavailable = errors.New("streamauth: authentication unavailable")
)

// authReason maps an authentication error to the reason code used in
// problems and logs.
func authReason(err error) string {
	switch {
	case errors.Is(err, ErrNoCredentials):
		return reasonMissingToken
	case errors.Is(err, ErrTokenExpired):
		return reasonTokenExpired
	case errors.Is(err, ErrInvalidToken):
		return reasonInvalidToken
	case errors.Is(err, ErrRevoked):
		return reasonTokenRevoked
	case errors.Is(err, ErrUnavailable):
		return reasonAuthUnavailable
	default:
		return reasonUnauthenticated
	}
}

// ctxKey is the type of the package's context keys; it is not zero-sized,
// so distinct keys never share an address.
type ctxKey struct{ name string }

var (
	callerCtxKey = &ctxKey{"caller"}
	streamCtxKey = &ctxKey{"stream"}
)

// FromContext returns the caller of the stream whose context ctx is (or
// derives from). The stream's context carries it for
// [hardening.CallerFrom] too; FromContext differs in answering only for a
// stream's context, never for a caller a middleware put in a request.
func FromContext(ctx context.Context) (hardening.Caller, bool) {
	if ctx == nil {
		return hardening.Caller{}, false
	}
	p, ok := ctx.Value(callerCtxKey).(*hardening.Caller)
	if !ok || p == nil {
		return hardening.Caller{}, false
	}
	return *p, true
}

// TenantFromContext returns the tenant of the stream's caller.
func TenantFromContext(ctx context.Context) (string, bool) {
	p, ok := FromContext(ctx)
	if !ok || p.Tenant == "" {
		return "", false
	}
	return p.Tenant, true
}

// StreamFromContext returns the registry record of the stream whose context
// ctx is.
func StreamFromContext(ctx context.Context) (StreamInfo, bool) {
	if ctx == nil {
		return StreamInfo{}, false
	}
	s, ok := ctx.Value(streamCtxKey).(*stream)
	if !ok || s == nil {
		return StreamInfo{}, false
	}
	return s.snapshot(), true
}
