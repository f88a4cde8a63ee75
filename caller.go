package hardening

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"
)

// Caller is the verified identity of a request: what the application's
// authentication states once, and every package of the kit reads from the
// request context by default (the tenant for quotas and flags, the scope of
// idempotency records, the owner of a stream or a preview).
type Caller struct {
	// Subject identifies the user or service (a JWT's "sub").
	Subject string
	// Tenant is the tenant the credential is scoped to; empty for none.
	Tenant string
	// Roles are the caller's roles.
	Roles []string
	// ExpiresAt is when the credential expires (streams end then); the
	// zero time means it does not expire.
	ExpiresAt time.Time
	// IssuedAt is when the credential was issued; zero when unknown.
	IssuedAt time.Time
}

// HasRole reports whether c has the role.
func (c Caller) HasRole(role string) bool { return slices.Contains(c.Roles, role) }

// callerKey is the context key of the Caller.
type callerKey struct{}

// WithCaller returns a copy of ctx carrying c.
func WithCaller(ctx context.Context, c Caller) context.Context {
	return &callerCtx{Context: ctx, c: c}
}

// callerCtx carries the Caller in the context itself: one allocation
// where context.WithValue costs two (the context and the boxed Caller),
// and Value hands out a pointer to it without allocating.
type callerCtx struct {
	context.Context
	c Caller
}

// Value implements context.Context.
func (c *callerCtx) Value(key any) any {
	if _, ok := key.(*callerKey); ok {
		return &c.c
	}
	return c.Context.Value(key)
}

// String describes the context without the caller.
func (c *callerCtx) String() string { return fmt.Sprint(c.Context) + ".WithCaller" }

// CallerFrom returns the Caller stored by WithCaller (or RequireCaller).
func CallerFrom(ctx context.Context) (Caller, bool) {
	if ctx == nil {
		return Caller{}, false
	}
	c, ok := ctx.Value(&callerKey{}).(*Caller)
	if !ok {
		return Caller{}, false
	}
	return *c, true
}

// Authenticator verifies a request's credential and returns its Caller:
// the one function a service writes. It returns an error when the request
// is not authenticated; an error that is an Error is answered with its
// Problem (a 503 when the identity backend is down, say), any other with
// 401 unauthenticated.
type Authenticator interface {
	Authenticate(r *http.Request) (Caller, error)
}

// AuthenticatorFunc adapts a function to Authenticator.
type AuthenticatorFunc func(r *http.Request) (Caller, error)

// Authenticate calls f(r).
func (f AuthenticatorFunc) Authenticate(r *http.Request) (Caller, error) { return f(r) }

// RequireCaller returns middleware that authenticates every request with
// auth and puts its Caller in the request context (CallerFrom). A request
// that fails is answered by onError (nil means WriteError) with the
// Authenticator's Error, or for any other error a 401 problem with reason
// "unauthenticated" (the error itself stays out of the response; it is
// still found by errors.Is through the one onError receives), with
// WWW-Authenticate: Bearer on a 401; the next handler does not run.
// It panics when auth is nil, as http.Handle does for a nil handler.
func RequireCaller(auth Authenticator, onError ErrorHandler) func(http.Handler) http.Handler {
	if auth == nil {
		panic("hardening: RequireCaller with a nil Authenticator")
	}
	if onError == nil {
		onError = WriteError
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, err := auth.Authenticate(r)
			if err != nil {
				var e Error
				if !errors.As(err, &e) {
					err = &authError{err: err}
				}
				if errors.As(err, &e) && e.Problem().Status == http.StatusUnauthorized {
					w.Header().Set("WWW-Authenticate", "Bearer")
				}
				onError(w, r, err)
				return
			}
			next.ServeHTTP(w, r.WithContext(WithCaller(r.Context(), c)))
		})
	}
}

// authError is an authentication failure answered 401 unauthenticated; it
// keeps the cause for logs and errors.Is, never for the client.
type authError struct{ err error }

func (e *authError) Error() string { return "hardening: unauthenticated: " + e.err.Error() }
func (e *authError) Unwrap() error { return e.err }
func (e *authError) Problem() Problem {
	return NewProblem(http.StatusUnauthorized, "unauthenticated", "a valid credential is required")
}
