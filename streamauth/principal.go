package streamauth

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"time"
)

// Principal is the authenticated caller of a stream.
type Principal struct {
	// UserID identifies the user (the JWT "sub" claim).
	UserID string
	// TenantID is the tenant the credential is scoped to (the "tid" claim).
	TenantID string
	// Roles are the caller's roles (the "roles" claim).
	Roles []string
	// ExpiresAt is when the credential expires; the stream is dropped then.
	// The zero time means the credential does not expire.
	ExpiresAt time.Time
	// IssuedAt is when the credential was issued (the "iat" claim); zero
	// when unknown. After Registry.Revoke for a user or tenant, credentials
	// of it issued at or before the revocation's second open no stream.
	IssuedAt time.Time
}

// HasRole reports whether p has the role.
func (p Principal) HasRole(role string) bool { return slices.Contains(p.Roles, role) }

// Authenticator turns a request into a Principal. It returns an error
// wrapping [ErrNoCredentials], [ErrTokenExpired] or [ErrInvalidToken] when
// the caller is not authenticated (answered 401), or [ErrUnavailable] when
// the backend it needs failed (answered 503). Any other error is answered
// 401 as well: authentication fails closed.
type Authenticator interface {
	Authenticate(r *http.Request) (Principal, error)
}

// AuthenticatorFunc adapts a function to [Authenticator].
type AuthenticatorFunc func(r *http.Request) (Principal, error)

// Authenticate calls f(r).
func (f AuthenticatorFunc) Authenticate(r *http.Request) (Principal, error) { return f(r) }

// TokenAuthenticator is an optional interface of an [Authenticator] that can
// check a raw token, as WebSocket in-band refresh needs. Authenticators that
// do not implement it are given a request carrying only
// "Authorization: Bearer <token>".
type TokenAuthenticator interface {
	AuthenticateToken(ctx context.Context, token string) (Principal, error)
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
		return "missing_token"
	case errors.Is(err, ErrTokenExpired):
		return "token_expired"
	case errors.Is(err, ErrInvalidToken):
		return "invalid_token"
	case errors.Is(err, ErrRevoked):
		return "token_revoked"
	case errors.Is(err, ErrUnavailable):
		return "auth_unavailable"
	default:
		return "unauthenticated"
	}
}

// ctxKey is the type of the package's context keys; it is not zero-sized,
// so distinct keys never share an address.
type ctxKey struct{ name string }

var (
	principalCtxKey = &ctxKey{"principal"}
	streamCtxKey    = &ctxKey{"stream"}
)

// FromContext returns the principal of the stream whose context ctx is (or
// derives from).
func FromContext(ctx context.Context) (Principal, bool) {
	if ctx == nil {
		return Principal{}, false
	}
	p, ok := ctx.Value(principalCtxKey).(*Principal)
	if !ok || p == nil {
		return Principal{}, false
	}
	return *p, true
}

// TenantFromContext returns the tenant of the stream's principal.
func TenantFromContext(ctx context.Context) (string, bool) {
	p, ok := FromContext(ctx)
	if !ok || p.TenantID == "" {
		return "", false
	}
	return p.TenantID, true
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
