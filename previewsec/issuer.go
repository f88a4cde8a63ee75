package previewsec

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/systembuilderhub/hardening"
)

// Issuer mints preview tokens signed with the key ring's current key.
type Issuer struct {
	ring       *KeyRing
	name       string
	defaultTTL time.Duration
	now        func() time.Time
	log        *slog.Logger
	reg        prometheus.Registerer
	issued     prometheus.Counter
}

// WithIssuerName sets "iss" (default DefaultIssuerName). The Verifier must
// expect the same name (WithExpectedIssuer).
func WithIssuerName(name string) IssuerOption {
	return issuerOption(func(i *Issuer) { i.name = name })
}

// WithDefaultTTL sets the lifetime of tokens minted with ttl 0 (default
// DefaultTTL, capped by the ring's max TTL).
func WithDefaultTTL(d time.Duration) IssuerOption {
	return issuerOption(func(i *Issuer) { i.defaultTTL = d })
}

// NewIssuer returns an Issuer signing with ring.
func NewIssuer(ring *KeyRing, opts ...IssuerOption) (*Issuer, error) {
	if ring == nil {
		return nil, errors.New("previewsec: NewIssuer needs a KeyRing")
	}
	i := &Issuer{ring: ring, name: DefaultIssuerName, defaultTTL: min(DefaultTTL, ring.maxTTL), now: ring.now}
	for _, o := range opts {
		if o != nil {
			o.applyIssuer(i)
		}
	}
	switch {
	case i.name == "":
		return nil, errors.New("previewsec: empty issuer name")
	case i.defaultTTL <= 0:
		return nil, fmt.Errorf("previewsec: default TTL %s must be positive", i.defaultTTL)
	case i.defaultTTL > ring.maxTTL:
		return nil, fmt.Errorf("previewsec: default TTL %s exceeds the max TTL %s", i.defaultTTL, ring.maxTTL)
	}
	if err := checkClock(i.now); err != nil {
		return nil, err
	}
	var err error
	if i.issued, err = issuedCounter(i.reg); err != nil {
		return nil, err
	}
	if i.log == nil {
		i.log = slog.New(slog.DiscardHandler)
	}
	return i, nil
}

// MaxTTL returns the longest lifetime Mint accepts.
func (i *Issuer) MaxTTL() time.Duration { return i.ring.maxTTL }

// Mint signs a token for g valid for ttl (0 means the default TTL). A ttl
// over the maximum is ErrTTLTooLong, never silently shortened. It returns
// the token, its expiry and the id of the key that signed it.
//
// The token is minted on behalf of the caller in ctx: an empty
// g.TenantID or g.UserID is taken from hardening.CallerFrom(ctx) (Tenant,
// Subject). Without a caller, or with a caller without a tenant, an empty
// TenantID is ErrInvalidGrant. A non-empty field is used as given: check
// that the caller may grant it before calling Mint.
func (i *Issuer) Mint(ctx context.Context, g Grant, ttl time.Duration) (token string, expiresAt time.Time, kid string, err error) {
	g = grantForCaller(ctx, g)
	if g.TenantID == "" || g.PreviewID == "" {
		return "", time.Time{}, "", fmt.Errorf("%w: tenant and preview ids are required", ErrInvalidGrant)
	}
	switch {
	case ttl == 0:
		ttl = i.defaultTTL
	case ttl < 0:
		return "", time.Time{}, "", fmt.Errorf("%w: TTL %s", ErrInvalidGrant, ttl)
	case ttl > i.ring.maxTTL:
		return "", time.Time{}, "", fmt.Errorf("%w: %s > %s", ErrTTLTooLong, ttl, i.ring.maxTTL)
	}
	now := i.now()
	key, err := i.ring.signingKeyAt(ctx, now)
	if err != nil {
		return "", time.Time{}, "", err
	}
	iat := now.Truncate(time.Second)
	exp := iat.Add(ttl)
	jti, err := tokenNewID()
	if err != nil {
		return "", time.Time{}, "", err
	}
	claims := &tokenWireClaims{
		TenantID: g.TenantID, PreviewID: g.PreviewID, SystemID: g.SystemID, Device: g.Device,
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: i.name, Subject: g.UserID, Audience: jwt.ClaimStrings{Audience},
			IssuedAt: jwt.NewNumericDate(iat), NotBefore: jwt.NewNumericDate(iat),
			ExpiresAt: jwt.NewNumericDate(exp), ID: jti,
		},
	}
	t := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
	t.Header["kid"] = key.ID
	token, err = t.SignedString(key.Secret)
	if err != nil {
		return "", time.Time{}, "", fmt.Errorf("previewsec: sign: %w", err)
	}
	if i.issued != nil {
		i.issued.Inc()
	}
	i.log.LogAttrs(ctx, slog.LevelDebug, "previewsec: token issued",
		slog.String("tid", g.TenantID), slog.String("pid", g.PreviewID), slog.String("kid", key.ID), slog.String("jti", jti))
	return token, exp, key.ID, nil
}

// grantForCaller fills g's empty tenant and user from the caller in ctx.
func grantForCaller(ctx context.Context, g Grant) Grant {
	if c, ok := hardening.CallerFrom(ctx); ok {
		if g.TenantID == "" {
			g.TenantID = c.Tenant
		}
		if g.UserID == "" {
			g.UserID = c.Subject
		}
	}
	return g
}

// tokenNewID returns a random 128-bit jti.
func tokenNewID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("previewsec: random jti: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}
