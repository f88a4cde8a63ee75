package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/systembuilderhub/hardening"
	"github.com/systembuilderhub/hardening/streamauth"
)

// The hub's bearer tokens: HS256 with HUB_AUTH_SECRET, audience and issuer
// "hub". Preview tokens (audience "preview", other keys) never pass here.
// The REST routes (requireAccess) and the streams (streamAuth) verify them
// with one function, authenticator.verify, so they share one
// streamauth.JWTAuthenticator (and its verified-token cache), one leeway and
// one maximum lifetime.
const (
	hubAudience = "hub"
	hubIssuer   = "hub"
	// authLeeway is the clock skew allowed when checking exp, nbf and iat.
	authLeeway = 30 * time.Second
	// defaultAuthMaxTTL is the default of HUB_AUTH_MAX_TTL, the longest
	// lifetime a bearer token may have.
	defaultAuthMaxTTL = 24 * time.Hour
	// maxBearerLen is the longest token verify parses.
	maxBearerLen = 8 << 10
)

var (
	errNoToken          = errors.New("no bearer token")
	errTokenTooLong     = errors.New("token too long")
	errLifetimeTooLong  = errors.New("token lifetime over HUB_AUTH_MAX_TTL")
	errMintOverLifetime = errors.New("ttl is over HUB_AUTH_MAX_TTL")
)

// numericDate is an exp, iat or nbf claim of a minted token. set reports
// whether the claim is present (omitzero leaves it out when not).
// (Verification decodes claims in streamauth, which accepts only JSON
// numbers there: no string of digits, no null.)
type numericDate struct {
	jwt.NumericDate
	set bool
}

func newNumericDate(t time.Time) numericDate {
	return numericDate{NumericDate: *jwt.NewNumericDate(t), set: true}
}

// IsZero reports an absent claim, for omitzero.
func (d numericDate) IsZero() bool { return !d.set }

func (d *numericDate) get() (*jwt.NumericDate, error) {
	if !d.set {
		return nil, nil
	}
	return &d.NumericDate, nil
}

// hubClaims are the claims of a hub bearer token. They implement
// jwt.Claims themselves (instead of embedding jwt.RegisteredClaims) so that
// exp, iat and nbf are numericDates.
type hubClaims struct {
	TenantID  string           `json:"tid"`
	Roles     []string         `json:"roles,omitempty"`
	Issuer    string           `json:"iss,omitempty"`
	Subject   string           `json:"sub,omitempty"`
	Audience  jwt.ClaimStrings `json:"aud,omitempty"`
	ExpiresAt numericDate      `json:"exp,omitzero"`
	NotBefore numericDate      `json:"nbf,omitzero"`
	IssuedAt  numericDate      `json:"iat,omitzero"`
}

var _ jwt.Claims = (*hubClaims)(nil)

func (c *hubClaims) GetExpirationTime() (*jwt.NumericDate, error) { return c.ExpiresAt.get() }
func (c *hubClaims) GetIssuedAt() (*jwt.NumericDate, error)       { return c.IssuedAt.get() }
func (c *hubClaims) GetNotBefore() (*jwt.NumericDate, error)      { return c.NotBefore.get() }
func (c *hubClaims) GetIssuer() (string, error)                   { return c.Issuer, nil }
func (c *hubClaims) GetSubject() (string, error)                  { return c.Subject, nil }
func (c *hubClaims) GetAudience() (jwt.ClaimStrings, error)       { return c.Audience, nil }

// authenticator verifies and mints the hub's bearer tokens.
type authenticator struct {
	secret []byte
	now    func() time.Time
	// maxTTL is HUB_AUTH_MAX_TTL; zero means defaultAuthMaxTTL.
	maxTTL time.Duration

	// The token checker is built once (jwtAuth): it holds the parser and
	// the cache of verified tokens.
	jwtOnce sync.Once
	jwt     *streamauth.JWTAuthenticator
	jwtErr  error
}

// lifetimeMax returns the longest lifetime a token may have.
func (au *authenticator) lifetimeMax() time.Duration {
	if au.maxTTL > 0 {
		return au.maxTTL
	}
	return defaultAuthMaxTTL
}

// jwtAuth returns the shared token checker (safe for concurrent use): HS256
// only, aud and iss "hub", exp required, exp, iat and nbf JSON numbers
// checked against au.now with authLeeway, sub and tid required strings,
// roles an optional array of strings; verified tokens are cached until
// their exp (streamauth.WithTokenCache's default).
func (au *authenticator) jwtAuth() (*streamauth.JWTAuthenticator, error) {
	au.jwtOnce.Do(func() {
		au.jwt, au.jwtErr = streamauth.NewJWT(au.secret,
			streamauth.WithAudience(hubAudience),
			streamauth.WithIssuer(hubIssuer),
			streamauth.WithLeeway(authLeeway),
			streamauth.WithIssuedAtCheck(),
			streamauth.WithClock(func() time.Time { return au.now() }),
		)
	})
	return au.jwt, au.jwtErr
}

// mint signs a token for sub in tenant, issued now and valid for ttl (at
// most the maximum lifetime; a negative ttl mints an expired token).
func (au *authenticator) mint(sub, tenant string, roles []string, ttl time.Duration) (string, error) {
	if ttl > au.lifetimeMax() {
		return "", fmt.Errorf("%w (%s > %s)", errMintOverLifetime, ttl, au.lifetimeMax())
	}
	now := au.now()
	c := &hubClaims{
		TenantID: tenant, Roles: roles, Issuer: hubIssuer, Subject: sub, Audience: jwt.ClaimStrings{hubAudience},
		ExpiresAt: newNumericDate(now.Add(ttl)), IssuedAt: newNumericDate(now),
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(au.secret)
}

// verify checks a raw token: HS256 only; aud and iss "hub"; sub and tid
// present; exp required; exp, iat and nbf JSON numbers checked against the
// clock with authLeeway (iat in the future is refused); and a lifetime of at
// most the maximum: exp-iat, or exp-now (plus the leeway) without iat. The
// signature and claims are checked once per token (then cached); the
// lifetime on every call.
func (au *authenticator) verify(raw string) (principal, error) {
	if raw == "" {
		return principal{}, errNoToken
	}
	if len(raw) > maxBearerLen {
		return principal{}, errTokenTooLong
	}
	ja, err := au.jwtAuth()
	if err != nil {
		return principal{}, err
	}
	c, err := ja.AuthenticateToken(context.Background(), raw)
	if err != nil {
		return principal{}, err
	}
	p := principal{UserID: c.Subject, TenantID: c.Tenant, Roles: c.Roles, ExpiresAt: c.ExpiresAt, IssuedAt: c.IssuedAt}
	if maxTTL := au.lifetimeMax(); !p.IssuedAt.IsZero() {
		if p.ExpiresAt.Sub(p.IssuedAt) > maxTTL {
			return principal{}, errLifetimeTooLong
		}
	} else if p.ExpiresAt.Sub(au.now()) > maxTTL+authLeeway {
		return principal{}, errLifetimeTooLong
	}
	return p, nil
}

// streamAuth authenticates the hub's SSE and WebSocket streams with
// authenticator.verify, the REST routes' rules. The token comes from
// "Authorization: Bearer", else the access_token cookie, else the
// access_token query parameter (browsers cannot set headers on an
// EventSource), as streamauth.JWTAuthenticator reads it. A token whose exp
// has passed but is within the leeway passes verify, yet opens no stream:
// the registry ends a stream at exp, so it answers token_expired at once.
type streamAuth struct{ au *authenticator }

var (
	_ hardening.Authenticator       = streamAuth{}
	_ streamauth.TokenAuthenticator = streamAuth{}
)

// Authenticate reads the request's token and verifies it.
func (s streamAuth) Authenticate(r *http.Request) (hardening.Caller, error) {
	return s.AuthenticateToken(r.Context(), streamToken(r))
}

// AuthenticateToken verifies a raw token (also the WebSocket in-band
// refresh), mapping the failures to streamauth's errors.
func (s streamAuth) AuthenticateToken(_ context.Context, tok string) (hardening.Caller, error) {
	p, err := s.au.verify(tok)
	switch {
	case errors.Is(err, errNoToken):
		return hardening.Caller{}, streamauth.ErrNoCredentials
	case errors.Is(err, streamauth.ErrTokenExpired), errors.Is(err, streamauth.ErrInvalidToken):
		return hardening.Caller{}, err
	case err != nil:
		return hardening.Caller{}, fmt.Errorf("%w: %w", streamauth.ErrInvalidToken, err)
	}
	return hardening.Caller{Subject: p.UserID, Tenant: p.TenantID, Roles: p.Roles, ExpiresAt: p.ExpiresAt, IssuedAt: p.IssuedAt}, nil
}

// streamToken returns a stream request's token.
func streamToken(r *http.Request) string {
	if r.Header.Get("Authorization") != "" {
		return bearerToken(r)
	}
	if c, err := r.Cookie(streamauth.DefaultTokenParam); err == nil && c.Value != "" {
		return c.Value
	}
	return r.URL.Query().Get(streamauth.DefaultTokenParam)
}
