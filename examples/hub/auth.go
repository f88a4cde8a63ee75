package main

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/systembuilderhub/hardening/internal/problem"
)

// The hub's bearer tokens: HS256 with HUB_AUTH_SECRET, audience "hub".
// Preview tokens (audience "preview", other keys) never pass here.
const (
	hubAudience = "hub"
	hubIssuer   = "hub"
	authLeeway  = 30 * time.Second
)

// principal is the verified caller of an API request.
type principal struct {
	UserID    string
	TenantID  string
	Roles     []string
	ExpiresAt time.Time
}

func (p principal) isAdmin() bool { return slices.Contains(p.Roles, "admin") }

type principalKey struct{}

func withPrincipal(ctx context.Context, p principal) context.Context {
	return context.WithValue(ctx, &principalKey{}, p)
}

// principalFrom returns the caller verified by the hub's auth, if any.
func principalFrom(ctx context.Context) (principal, bool) {
	p, ok := ctx.Value(&principalKey{}).(principal)
	return p, ok
}

// hubClaims are the claims of a hub bearer token.
type hubClaims struct {
	TenantID string   `json:"tid"`
	Roles    []string `json:"roles,omitempty"`
	jwt.RegisteredClaims
}

// authenticator verifies and mints the hub's bearer tokens.
type authenticator struct {
	secret []byte
	now    func() time.Time

	// The parser and key function are built once (jwtParser): building
	// them per request cost a dozen allocations.
	parserOnce sync.Once
	parser     *jwt.Parser
	keyFunc    jwt.Keyfunc
}

// jwtParser returns the shared parser (safe for concurrent use) and key
// function. The parser reads au.now at each call.
func (au *authenticator) jwtParser() (*jwt.Parser, jwt.Keyfunc) {
	au.parserOnce.Do(func() {
		au.parser = jwt.NewParser(
			jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
			jwt.WithExpirationRequired(),
			jwt.WithAudience(hubAudience),
			jwt.WithIssuer(hubIssuer),
			jwt.WithLeeway(authLeeway),
			jwt.WithTimeFunc(func() time.Time { return au.now() }),
		)
		var key any = au.secret
		au.keyFunc = func(*jwt.Token) (any, error) { return key, nil }
	})
	return au.parser, au.keyFunc
}

var errNoToken = errors.New("no bearer token")

// mint signs a token for sub in tenant.
func (au *authenticator) mint(sub, tenant string, roles []string, ttl time.Duration) (string, error) {
	now := au.now()
	c := hubClaims{
		TenantID: tenant,
		Roles:    roles,
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   sub,
			Issuer:    hubIssuer,
			Audience:  jwt.ClaimStrings{hubAudience},
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		},
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(au.secret)
}

// verify checks a raw token: HS256 only, exp required, audience "hub",
// sub and tid present.
func (au *authenticator) verify(raw string) (principal, error) {
	if raw == "" {
		return principal{}, errNoToken
	}
	if len(raw) > 8<<10 {
		return principal{}, errors.New("token too long")
	}
	var c hubClaims
	parser, keyFunc := au.jwtParser()
	_, err := parser.ParseWithClaims(raw, &c, keyFunc)
	if err != nil {
		return principal{}, err
	}
	if c.Subject == "" || c.TenantID == "" {
		return principal{}, errors.New("token lacks sub or tid")
	}
	return principal{UserID: c.Subject, TenantID: c.TenantID, Roles: c.Roles, ExpiresAt: c.ExpiresAt.Time}, nil
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
			problem.Write(w, r, problem.New(http.StatusUnauthorized, "unauthenticated", detail))
			return
		}
		if level == admin && !p.isAdmin() {
			problem.Write(w, r, problem.New(http.StatusForbidden, "forbidden", "this endpoint needs the admin role"))
			return
		}
		next.ServeHTTP(w, r.WithContext(withPrincipal(r.Context(), p)))
	})
}
