package streamauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/systembuilderhub/hardening"
	"github.com/systembuilderhub/hardening/internal/tokencache"
)

// DefaultTokenParam is the query parameter and cookie name a token is read
// from when the Authorization header carries none.
const DefaultTokenParam = "access_token"

// redactedValue replaces a query token in URLs handed on or logged.
const redactedValue = "REDACTED"

// Default claim names of a [JWTAuthenticator] (see WithSubjectClaim,
// WithTenantClaim, WithRolesClaim).
const (
	DefaultSubjectClaim = "sub"
	DefaultTenantClaim  = "tid"
	DefaultRolesClaim   = "roles"
)

// JWTAuthenticator authenticates HS256 bearer JWTs. The token is read from
// "Authorization: Bearer", then the cookie, then the query parameter
// (both named access_token unless configured otherwise). Claims: the
// subject (sub) and the tenant (tid) are required strings, the roles
// (roles) an optional array of strings, exp is required; aud and iss are
// checked when set. WithSubjectClaim, WithTenantClaim and WithRolesClaim
// read other claim names, as an identity provider issues them (an "org"
// tenant, say). A token without its subject or tenant claim, or with one
// of another type, is invalid (401 invalid_token): streams are
// tenant-scoped, so a tenant is always required. Verified tokens are
// cached (WithTokenCache).
//
// A JWTAuthenticator is a [hardening.Authenticator]: pass the same value to
// [hardening.RequireCaller] for REST routes and to [SSE] or [WebSocket]
// for streams.
type JWTAuthenticator struct {
	secret []byte
	cfg    jwtConfig
	parser *jwt.Parser
	cache  *tokencache.Cache[hardening.Caller]
}

type jwtConfig struct {
	audience, issuer   string
	cookie, queryParam string
	subject, tenant    string // claim names
	roles              string
	leeway             time.Duration
	now                func() time.Time
	cacheSize          int
	checkIssuedAt      bool
}

var (
	_ hardening.Authenticator = (*JWTAuthenticator)(nil)
	_ TokenAuthenticator      = (*JWTAuthenticator)(nil)
)

// JWTOption configures [NewJWT].
type JWTOption interface{ applyJWT(*jwtConfig) }

type jwtOption func(*jwtConfig)

func (f jwtOption) applyJWT(c *jwtConfig) { f(c) }

// WithAudience requires the token's aud claim to contain aud.
func WithAudience(aud string) JWTOption { return jwtOption(func(c *jwtConfig) { c.audience = aud }) }

// WithIssuer requires the token's iss claim to equal iss.
func WithIssuer(iss string) JWTOption { return jwtOption(func(c *jwtConfig) { c.issuer = iss }) }

// WithCookie sets the cookie the token is read from; "" disables cookies.
func WithCookie(name string) JWTOption { return jwtOption(func(c *jwtConfig) { c.cookie = name }) }

// WithQueryParam sets the query parameter the token is read from; ""
// disables query tokens.
func WithQueryParam(name string) JWTOption {
	return jwtOption(func(c *jwtConfig) { c.queryParam = name })
}

// WithLeeway allows clock skew when checking exp and nbf (default 0); d
// must not be negative.
func WithLeeway(d time.Duration) JWTOption { return jwtOption(func(c *jwtConfig) { c.leeway = d }) }

// WithIssuedAtCheck makes iat checked, not only read: a token whose iat is
// not a number, or is later than now plus the leeway (minted in the
// future), is invalid. Without it iat is optional and only read, for
// revocation.
func WithIssuedAtCheck() JWTOption {
	return jwtOption(func(c *jwtConfig) { c.checkIssuedAt = true })
}

// WithSubjectClaim reads the caller's Subject from the claim name (default
// "sub"); the claim is a required string. name must not be empty.
func WithSubjectClaim(name string) JWTOption {
	return jwtOption(func(c *jwtConfig) { c.subject = name })
}

// WithTenantClaim reads the caller's Tenant from the claim name (default
// "tid"; "org" for many identity providers); the claim is a required
// string. name must not be empty.
func WithTenantClaim(name string) JWTOption {
	return jwtOption(func(c *jwtConfig) { c.tenant = name })
}

// WithRolesClaim reads the caller's Roles from the claim name (default
// "roles"), an optional array of strings. name must not be empty.
func WithRolesClaim(name string) JWTOption {
	return jwtOption(func(c *jwtConfig) { c.roles = name })
}

// MaxTokenLen is the longest token the authenticator parses; longer ones
// are invalid.
const MaxTokenLen = 8 << 10

// MinSecretLen is the shortest HS256 secret NewJWT accepts.
const MinSecretLen = 16

// NewJWT returns an authenticator for HS256 tokens signed with secret.
func NewJWT(secret []byte, opts ...JWTOption) (*JWTAuthenticator, error) {
	if len(secret) < MinSecretLen {
		return nil, fmt.Errorf("streamauth: JWT secret must be at least %d bytes", MinSecretLen)
	}
	c := jwtConfig{cookie: DefaultTokenParam, queryParam: DefaultTokenParam, now: time.Now,
		subject: DefaultSubjectClaim, tenant: DefaultTenantClaim, roles: DefaultRolesClaim,
		cacheSize: DefaultTokenCacheSize}
	for _, o := range opts {
		if o != nil {
			o.applyJWT(&c)
		}
	}
	switch {
	case c.now == nil:
		return nil, errors.New("streamauth: WithClock(nil)")
	case c.leeway < 0:
		return nil, errors.New("streamauth: negative JWT leeway")
	case c.subject == "" || c.tenant == "" || c.roles == "":
		return nil, errors.New("streamauth: empty JWT claim name")
	case c.cacheSize < 0:
		return nil, errors.New("streamauth: negative token cache size")
	}
	now := c.now
	popts := []jwt.ParserOption{
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(func() time.Time { return now() }),
		jwt.WithLeeway(c.leeway),
	}
	if c.audience != "" {
		popts = append(popts, jwt.WithAudience(c.audience))
	}
	if c.issuer != "" {
		popts = append(popts, jwt.WithIssuer(c.issuer))
	}
	if c.checkIssuedAt {
		popts = append(popts, jwt.WithIssuedAt())
	}
	return &JWTAuthenticator{secret: append([]byte(nil), secret...), cfg: c, parser: jwt.NewParser(popts...),
		cache: tokencache.New[hardening.Caller](c.cacheSize)}, nil
}

// Claims are the JWT claims Sign writes, under the default claim names.
type Claims struct {
	jwt.RegisteredClaims
	// Tenant is the "tid" claim.
	Tenant string `json:"tid"`
	// Roles is the "roles" claim.
	Roles []string `json:"roles,omitempty"`
}

// Authenticate reads the request's token and validates it.
func (a *JWTAuthenticator) Authenticate(r *http.Request) (hardening.Caller, error) {
	tok := a.Token(r)
	if tok == "" {
		return hardening.Caller{}, ErrNoCredentials
	}
	return a.AuthenticateToken(r.Context(), tok)
}

// AuthenticateToken validates a raw token. A token verified before and
// still valid is answered from the token cache (WithTokenCache).
func (a *JWTAuthenticator) AuthenticateToken(_ context.Context, token string) (hardening.Caller, error) {
	if token == "" {
		return hardening.Caller{}, ErrNoCredentials
	}
	if len(token) > MaxTokenLen {
		return hardening.Caller{}, ErrInvalidToken
	}
	now := a.cfg.now()
	var key tokencache.Key
	cacheable := a.cache != nil && tokencache.Cacheable(token)
	if cacheable {
		key = tokencache.KeyOf(token)
		if c, ok := a.cached(key, now); ok {
			return c, nil
		}
	}
	m := jwt.MapClaims{}
	_, err := a.parser.ParseWithClaims(token, m, func(*jwt.Token) (any, error) { return a.secret, nil })
	if err != nil {
		if errors.Is(err, jwt.ErrTokenExpired) {
			return hardening.Caller{}, ErrTokenExpired
		}
		// The cause is for logs only; it never reaches the client.
		return hardening.Caller{}, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	c, err := a.caller(m)
	if err == nil && cacheable {
		a.remember(key, m, c, now)
	}
	return c, err
}

// caller maps validated claims to a Caller.
func (a *JWTAuthenticator) caller(m jwt.MapClaims) (hardening.Caller, error) {
	sub, _ := m[a.cfg.subject].(string)
	tenant, _ := m[a.cfg.tenant].(string)
	exp, err := m.GetExpirationTime()
	if sub == "" || tenant == "" || err != nil || exp == nil {
		return hardening.Caller{}, ErrInvalidToken
	}
	c := hardening.Caller{Subject: sub, Tenant: tenant, ExpiresAt: exp.Time}
	if raw, ok := m[a.cfg.roles]; ok && raw != nil {
		list, ok := raw.([]any)
		if !ok {
			return hardening.Caller{}, ErrInvalidToken
		}
		c.Roles = make([]string, 0, len(list))
		for _, v := range list {
			role, ok := v.(string)
			if !ok {
				return hardening.Caller{}, ErrInvalidToken
			}
			c.Roles = append(c.Roles, role)
		}
	}
	if iat, err := m.GetIssuedAt(); err == nil && iat != nil {
		c.IssuedAt = iat.Time
	}
	return c, nil
}

// Sign returns an HS256 token for the claims, signed with the
// authenticator's secret, under the default claim names (sub, tid,
// roles). It is meant for tests and for services that mint their own
// stream tokens.
func (a *JWTAuthenticator) Sign(c Claims) (string, error) {
	return jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(a.secret)
}

// Token returns the credential r carries, where the authenticator looks
// for it, in this order: an "Authorization: Bearer" header (a header with
// another scheme yields ""), the cookie (WithCookie), the query parameter
// (WithQueryParam). It returns "" when there is none. A service that
// verifies its tokens itself extracts them the same way with it.
func (a *JWTAuthenticator) Token(r *http.Request) string {
	if h := r.Header.Get("Authorization"); h != "" {
		if scheme, tok, ok := strings.Cut(h, " "); ok && strings.EqualFold(scheme, "Bearer") {
			return strings.TrimSpace(tok)
		}
		return ""
	}
	if a.cfg.cookie != "" {
		if c, err := r.Cookie(a.cfg.cookie); err == nil && c.Value != "" {
			return c.Value
		}
	}
	if a.cfg.queryParam != "" && r.URL != nil {
		return r.URL.Query().Get(a.cfg.queryParam)
	}
	return ""
}

// RedactedURL returns u as a string with the value of every access_token
// query parameter replaced by REDACTED, for access logs. u may be nil.
func RedactedURL(u *url.URL) string {
	if u == nil {
		return ""
	}
	return redactURL(u, DefaultTokenParam).String()
}

// redactURL returns a copy of u whose param values are REDACTED; u itself
// is returned when it has none.
func redactURL(u *url.URL, param string) *url.URL {
	if param == "" || u.RawQuery == "" || !strings.Contains(u.RawQuery, param) {
		return u
	}
	q := u.Query()
	if !q.Has(param) {
		return u
	}
	q.Set(param, redactedValue)
	c := *u
	c.RawQuery = q.Encode()
	return &c
}

// redactRequest returns a shallow copy of r whose URL and RequestURI no
// longer carry a query token.
func redactRequest(r *http.Request, param string) *http.Request {
	if r.URL == nil {
		return r
	}
	u := redactURL(r.URL, param)
	if u == r.URL {
		return r
	}
	r2 := new(http.Request)
	*r2 = *r
	r2.URL = u
	r2.RequestURI = u.RequestURI()
	return r2
}
