package main

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/systembuilderhub/hardening"
)

// principal is the verified caller of an API request.
type principal struct {
	UserID    string
	TenantID  string
	Roles     []string
	ExpiresAt time.Time
	// IssuedAt is the token's iat; zero when the token has none.
	IssuedAt time.Time
}

func (p principal) isAdmin() bool { return slices.Contains(p.Roles, "admin") }

// withPrincipal states the verified caller once, as the kit's
// hardening.Caller: every package reads it from the context by default.
func withPrincipal(ctx context.Context, p principal) context.Context {
	return hardening.WithCaller(ctx, hardening.Caller{Subject: p.UserID, Tenant: p.TenantID, Roles: p.Roles,
		ExpiresAt: p.ExpiresAt, IssuedAt: p.IssuedAt})
}

// principalFrom returns the caller verified by the hub's auth, if any.
func principalFrom(ctx context.Context) (principal, bool) {
	c, ok := hardening.CallerFrom(ctx)
	return principal{UserID: c.Subject, TenantID: c.Tenant, Roles: c.Roles, ExpiresAt: c.ExpiresAt, IssuedAt: c.IssuedAt}, ok
}

// bearerToken returns the token of an "Authorization: Bearer" header.
func bearerToken(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// access is who may call a route.
type access int

const (
	// public routes need no token.
	public access = iota
	// user routes need a valid hub bearer token.
	user
	// admin routes need a valid hub bearer token with role "admin".
	admin
)

func (a access) String() string {
	switch a {
	case user:
		return "user"
	case admin:
		return "admin"
	}
	return "public"
}

// requireAccess wraps next with the hub's bearer authentication.
func (a *app) requireAccess(level access, next http.Handler) http.Handler {
	if level == public {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := a.auth.verify(bearerToken(r))
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="hub"`)
			detail := "a valid bearer token is required"
			if !errors.Is(err, errNoToken) {
				w.Header().Set("WWW-Authenticate", `Bearer realm="hub", error="invalid_token"`)
				a.log.InfoContext(r.Context(), "auth rejected", "path", r.URL.Path, "err", err.Error())
			}
			hardening.WriteProblem(w, r, hardening.NewProblem(http.StatusUnauthorized, "unauthenticated", detail))
			return
		}
		if level == admin && !p.isAdmin() {
			hardening.WriteProblem(w, r, hardening.NewProblem(http.StatusForbidden, "forbidden", "this endpoint needs the admin role"))
			return
		}
		next.ServeHTTP(w, r.WithContext(withPrincipal(r.Context(), p)))
	})
}
