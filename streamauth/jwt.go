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
)

// DefaultTokenParam is the query parameter and cookie name a token is read
// from when the Authorization header carries none.
const DefaultTokenParam = "access_token"

// redactedValue replaces a query token in URLs handed on or logged.
const redactedValue = "REDACTED"

// JWTAuthenticator authenticates HS256 bearer JWTs. The token is read from
// "Authorization: Bearer", then the cookie, then the query parameter
// (both named access_token unless configured otherwise). Claims: sub (user),
// tid (tenant), roles, exp (required); aud and iss are checked when set.
type JWTAuthenticator struct {
	secret     []byte
	audience   string
	issuer     string
	cookie     string
	queryParam string
	leeway     time.Duration
	now        func() time.Time
	parser     *jwt.Parser
}

var (
	_ Authenticator      = (*JWTAuthenticator)(nil)
	_ TokenAuthenticator = (*JWTAuthenticator)(nil)
)

// JWTOption configures a [JWTAuthenticator].
type JWTOption func(*JWTAuthenticator)

// WithAudience requires the token's aud claim to contain aud.
func WithAudience(aud string) JWTOption { return func(a *JWTAuthenticator) { a.audience = aud } }

// WithIssuer requires the token's iss claim to equal iss.
func WithIssuer(iss string) JWTOption { return func(a *JWTAuthenticator) { a.issuer = iss } }

// WithCookie sets the cookie the token is read from; "" disables cookies.
func WithCookie(name string) JWTOption { return func(a *JWTAuthenticator) { a.cookie = name } }

// WithQueryParam sets the query parameter the token is read from; ""
// disables query tokens.
func WithQueryParam(name string) JWTOption { return func(a *JWTAuthenticator) { a.queryParam = name } }

// WithLeeway allows clock skew when checking exp and nbf (default 0).
func WithLeeway(d time.Duration) JWTOption { return func(a *JWTAuthenticator) { a.leeway = d } }

// WithJWTClock sets the clock used to check exp and nbf (default time.Now).
func WithJWTClock(now func() time.Time) JWTOption { return func(a *JWTAuthenticator) { a.now = now } }

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
	a := &JWTAuthenticator{
		secret:     append([]byte(nil), secret...),
		cookie:     DefaultTokenParam,
		queryParam: DefaultTokenParam,
		now:        time.Now,
	}
	for _, o := range opts {
		if o != nil {
			o(a)
		}
	}
	if a.now == nil {
		a.now = time.Now
	}
	if a.leeway < 0 {
		return nil, errors.New("streamauth: negative JWT leeway")
	}
	popts := []jwt.ParserOption{
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(func() time.Time { return a.now() }),
		jwt.WithLeeway(a.leeway),
	}
	if a.audience != "" {
		popts = append(popts, jwt.WithAudience(a.audience))
	}
	if a.issuer != "" {
		popts = append(popts, jwt.WithIssuer(a.issuer))
	}
	a.parser = jwt.NewParser(popts...)
	return a, nil
}

// Claims are the JWT claims the authenticator reads.
type Claims struct {
	jwt.RegisteredClaims
	// TenantID is the "tid" claim.
	TenantID string `json:"tid"`
	// Roles is the "roles" claim.
	Roles []string `json:"roles,omitempty"`
}

// Authenticate reads the request's token and validates it.
func (a *JWTAuthenticator) Authenticate(r *http.Request) (Principal, error) {
	tok := a.token(r)
	if tok == "" {
		return Principal{}, ErrNoCredentials
	}
	return a.AuthenticateToken(r.Context(), tok)
}

// AuthenticateToken validates a raw token.
func (a *JWTAuthenticator) AuthenticateToken(_ context.Context, token string) (Principal, error) {
	if token == "" {
		return Principal{}, ErrNoCredentials
	}
	if len(token) > MaxTokenLen {
		return Principal{}, ErrInvalidToken
	}
	var c Claims
	_, err := a.parser.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return a.secret, nil })
	if err != nil {
		if errors.Is(err, jwt.ErrTokenExpired) {
			return Principal{}, ErrTokenExpired
		}
		return Principal{}, ErrInvalidToken
	}
	if c.Subject == "" || c.TenantID == "" || c.ExpiresAt == nil {
		return Principal{}, ErrInvalidToken
	}
	p := Principal{UserID: c.Subject, TenantID: c.TenantID, Roles: c.Roles, ExpiresAt: c.ExpiresAt.Time}
	if c.IssuedAt != nil {
		p.IssuedAt = c.IssuedAt.Time
	}
	return p, nil
}

// Sign returns an HS256 token for the claims, signed with the
// authenticator's secret. It is meant for tests and for services that mint
// their own stream tokens.
func (a *JWTAuthenticator) Sign(c Claims) (string, error) {
	return jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(a.secret)
}

func (a *JWTAuthenticator) token(r *http.Request) string {
	if h := r.Header.Get("Authorization"); h != "" {
		if scheme, tok, ok := strings.Cut(h, " "); ok && strings.EqualFold(scheme, "Bearer") {
			return strings.TrimSpace(tok)
		}
		return ""
	}
	if a.cookie != "" {
		if c, err := r.Cookie(a.cookie); err == nil && c.Value != "" {
			return c.Value
		}
	}
	if a.queryParam != "" && r.URL != nil {
		return r.URL.Query().Get(a.queryParam)
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
