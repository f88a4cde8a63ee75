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
)

// Audience is the "aud" of every preview token. A token for any other
// audience (the hub's own API tokens use "hub") is rejected, and a preview
// token is rejected by any verifier that expects another audience.
const Audience = "preview"

// DefaultIssuerName is the "iss" written and expected by default.
const DefaultIssuerName = "hardening-previewsec"

// DefaultMaxTokenLength is the longest token Verify will parse (4 KiB).
const DefaultMaxTokenLength = 4096

// Algorithm is the only signing algorithm minted and accepted.
const Algorithm = "HS256"

// Typed verification errors. Verify returns errors that match exactly one of
// them with errors.Is. They are for logs and metrics: clients must only ever
// see one generic answer (RequirePreviewToken does that).
var (
	ErrMalformed       = errors.New("previewsec: malformed token")
	ErrTooLong         = errors.New("previewsec: token too long")
	ErrAlgorithm       = errors.New("previewsec: signing algorithm not allowed")
	ErrUnknownKey      = errors.New("previewsec: unknown signing key")
	ErrBadSignature    = errors.New("previewsec: invalid signature")
	ErrExpired         = errors.New("previewsec: token expired")
	ErrNotYetValid     = errors.New("previewsec: token not valid yet")
	ErrMissingClaim    = errors.New("previewsec: required claim missing")
	ErrInvalidAudience = errors.New("previewsec: wrong audience")
	ErrInvalidIssuer   = errors.New("previewsec: wrong issuer")
	ErrLifetimeTooLong = errors.New("previewsec: token lifetime exceeds the maximum")
	ErrRevoked         = errors.New("previewsec: token revoked")
	ErrTTLTooLong      = errors.New("previewsec: requested TTL exceeds the maximum")
	ErrInvalidGrant    = errors.New("previewsec: invalid grant")
)

// Grant is what a token grants: who may open which preview. Tenant and
// user must come from the caller's authenticated identity, never from a
// request body.
type Grant struct {
	// UserID becomes "sub".
	UserID string
	// TenantID becomes "tid"; required.
	TenantID string
	// PreviewID becomes "pid"; required.
	PreviewID string
	// SystemID becomes "sys".
	SystemID string
	// Device is the device preset ("dev"), for example "desktop".
	Device string
}

// Claims are the verified claims of a preview token.
type Claims struct {
	Issuer    string    // iss
	Audience  string    // aud (always Audience)
	Subject   string    // sub: user id
	TenantID  string    // tid
	PreviewID string    // pid
	SystemID  string    // sys
	Device    string    // dev
	IssuedAt  time.Time // iat
	NotBefore time.Time // nbf
	ExpiresAt time.Time // exp
	ID        string    // jti
	KeyID     string    // kid of the header
}

// tokenWireClaims is the JSON form of a token's payload.
type tokenWireClaims struct {
	TenantID  string `json:"tid,omitempty"`
	PreviewID string `json:"pid,omitempty"`
	SystemID  string `json:"sys,omitempty"`
	Device    string `json:"dev,omitempty"`
	jwt.RegisteredClaims
}

// Rejection reasons: the bounded label values of
// hardening_previewsec_token_rejections_total.
const (
	ReasonMissing      = "missing"
	ReasonMalformed    = "malformed"
	ReasonTooLong      = "too_long"
	ReasonAlgorithm    = "algorithm"
	ReasonUnknownKey   = "unknown_key"
	ReasonSignature    = "signature"
	ReasonExpired      = "expired"
	ReasonNotYetValid  = "not_yet_valid"
	ReasonClaims       = "claims"
	ReasonLifetime     = "lifetime"
	ReasonRevoked      = "revoked"
	ReasonWrongPreview = "wrong_preview"
	ReasonWrongTenant  = "wrong_tenant"
	ReasonUnavailable  = "unavailable"
)

// RejectionReason maps a Verify error to its metric label and log value.
func RejectionReason(err error) string {
	switch {
	case errors.Is(err, ErrTooLong):
		return ReasonTooLong
	case errors.Is(err, ErrAlgorithm):
		return ReasonAlgorithm
	case errors.Is(err, ErrUnknownKey):
		return ReasonUnknownKey
	case errors.Is(err, ErrBadSignature):
		return ReasonSignature
	case errors.Is(err, ErrExpired):
		return ReasonExpired
	case errors.Is(err, ErrNotYetValid):
		return ReasonNotYetValid
	case errors.Is(err, ErrMissingClaim), errors.Is(err, ErrInvalidAudience), errors.Is(err, ErrInvalidIssuer):
		return ReasonClaims
	case errors.Is(err, ErrLifetimeTooLong):
		return ReasonLifetime
	case errors.Is(err, ErrRevoked):
		return ReasonRevoked
	case errors.Is(err, ErrUnavailable):
		return ReasonUnavailable
	}
	return ReasonMalformed
}

func registerTokenCollector[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing, nil
			}
		}
		return c, err
	}
	return c, nil
}

// ---------------------------------------------------------------- Issuer

// Issuer mints preview tokens signed with the key ring's current key.
type Issuer struct {
	ring       *KeyRing
	name       string
	defaultTTL time.Duration
	now        func() time.Time
	log        *slog.Logger
	issued     prometheus.Counter
}

// IssuerOption configures an Issuer.
type IssuerOption func(*Issuer) error

// WithIssuerName sets "iss" (default DefaultIssuerName). The Verifier must
// expect the same name (WithExpectedIssuer).
func WithIssuerName(name string) IssuerOption {
	return func(i *Issuer) error {
		if name == "" {
			return errors.New("previewsec: empty issuer name")
		}
		i.name = name
		return nil
	}
}

// WithDefaultTTL sets the lifetime of tokens minted with ttl 0 (default
// DefaultTTL, capped by the ring's max TTL).
func WithDefaultTTL(d time.Duration) IssuerOption {
	return func(i *Issuer) error {
		if d <= 0 {
			return fmt.Errorf("previewsec: default TTL %s must be positive", d)
		}
		i.defaultTTL = d
		return nil
	}
}

// WithIssuerClock sets the clock (default: the key ring's).
func WithIssuerClock(now func() time.Time) IssuerOption {
	return func(i *Issuer) error {
		if now == nil {
			return errors.New("previewsec: nil clock")
		}
		i.now = now
		return nil
	}
}

// WithIssuerLogger sets the logger (nil = discard).
func WithIssuerLogger(l *slog.Logger) IssuerOption {
	return func(i *Issuer) error { i.log = l; return nil }
}

// WithIssuerRegisterer registers hardening_previewsec_tokens_issued_total
// with reg (nil = no metrics).
func WithIssuerRegisterer(reg prometheus.Registerer) IssuerOption {
	return func(i *Issuer) error {
		if reg == nil {
			return nil
		}
		c, err := registerTokenCollector(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hardening_previewsec_tokens_issued_total",
			Help: "Preview tokens minted.",
		}))
		if err != nil {
			return fmt.Errorf("previewsec: register metrics: %w", err)
		}
		i.issued = c
		return nil
	}
}

// NewIssuer returns an Issuer signing with ring.
func NewIssuer(ring *KeyRing, opts ...IssuerOption) (*Issuer, error) {
	if ring == nil {
		return nil, errors.New("previewsec: NewIssuer needs a KeyRing")
	}
	i := &Issuer{ring: ring, name: DefaultIssuerName, defaultTTL: min(DefaultTTL, ring.maxTTL), now: ring.now}
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(i); err != nil {
			return nil, err
		}
	}
	if i.defaultTTL > ring.maxTTL {
		return nil, fmt.Errorf("previewsec: default TTL %s exceeds the max TTL %s", i.defaultTTL, ring.maxTTL)
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
func (i *Issuer) Mint(ctx context.Context, g Grant, ttl time.Duration) (token string, expiresAt time.Time, kid string, err error) {
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

// tokenNewID returns a random 128-bit jti.
func tokenNewID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("previewsec: random jti: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// -------------------------------------------------------------- Verifier

// Verifier checks preview tokens. It accepts only HS256 tokens whose "kid"
// names a key of the ring that still verifies, with "exp", "iat", "aud"
// (= Audience), "iss", "pid" and "tid" present, "exp"-"iat" at most the
// ring's max TTL, and exp, nbf and iat checked against the clock with the
// ring's leeway. Tokens longer than the length cap are rejected before any
// parsing. With a RevocationList, revoked previews and tokens are rejected.
type Verifier struct {
	ring        *KeyRing
	issuer      string
	maxLen      int
	now         func() time.Time
	log         *slog.Logger
	revocations *RevocationList
	parser      *jwt.Parser
	rejections  *prometheus.CounterVec
}

// VerifierOption configures a Verifier.
type VerifierOption func(*Verifier) error

// WithExpectedIssuer sets the required "iss" (default DefaultIssuerName).
func WithExpectedIssuer(name string) VerifierOption {
	return func(v *Verifier) error {
		if name == "" {
			return errors.New("previewsec: empty issuer name")
		}
		v.issuer = name
		return nil
	}
}

// WithMaxTokenLength sets the length cap (default DefaultMaxTokenLength).
func WithMaxTokenLength(n int) VerifierOption {
	return func(v *Verifier) error {
		if n < 64 {
			return fmt.Errorf("previewsec: max token length %d too small", n)
		}
		v.maxLen = n
		return nil
	}
}

// WithVerifierClock sets the clock (default: the key ring's).
func WithVerifierClock(now func() time.Time) VerifierOption {
	return func(v *Verifier) error {
		if now == nil {
			return errors.New("previewsec: nil clock")
		}
		v.now = now
		return nil
	}
}

// WithVerifierLogger sets the logger (nil = discard).
func WithVerifierLogger(l *slog.Logger) VerifierOption {
	return func(v *Verifier) error { v.log = l; return nil }
}

// WithRevocations makes the Verifier reject tokens revoked in l.
func WithRevocations(l *RevocationList) VerifierOption {
	return func(v *Verifier) error { v.revocations = l; return nil }
}

// WithVerifierRegisterer registers
// hardening_previewsec_token_rejections_total{reason} with reg (nil = no
// metrics). Reasons are the bounded Reason* constants.
func WithVerifierRegisterer(reg prometheus.Registerer) VerifierOption {
	return func(v *Verifier) error {
		if reg == nil {
			return nil
		}
		c, err := registerTokenCollector(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hardening_previewsec_token_rejections_total",
			Help: "Preview tokens rejected, by reason.",
		}, []string{"reason"}))
		if err != nil {
			return fmt.Errorf("previewsec: register metrics: %w", err)
		}
		v.rejections = c
		return nil
	}
}

// NewVerifier returns a Verifier using ring's keys, max TTL and leeway.
func NewVerifier(ring *KeyRing, opts ...VerifierOption) (*Verifier, error) {
	if ring == nil {
		return nil, errors.New("previewsec: NewVerifier needs a KeyRing")
	}
	v := &Verifier{ring: ring, issuer: DefaultIssuerName, maxLen: DefaultMaxTokenLength, now: ring.now}
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(v); err != nil {
			return nil, err
		}
	}
	if v.revocations != nil && v.revocations.retention < ring.maxTTL+ring.leeway {
		return nil, fmt.Errorf("previewsec: revocation retention %s is shorter than max TTL + leeway %s",
			v.revocations.retention, ring.maxTTL+ring.leeway)
	}
	if v.log == nil {
		v.log = slog.New(slog.DiscardHandler)
	}
	v.parser = jwt.NewParser(
		jwt.WithValidMethods([]string{Algorithm}),
		jwt.WithAudience(Audience),
		jwt.WithIssuer(v.issuer),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(ring.leeway),
		jwt.WithTimeFunc(v.now),
		jwt.WithStrictDecoding(),
	)
	if v.rejections != nil {
		for _, r := range []string{ReasonMissing, ReasonMalformed, ReasonTooLong, ReasonAlgorithm, ReasonUnknownKey,
			ReasonSignature, ReasonExpired, ReasonNotYetValid, ReasonClaims, ReasonLifetime, ReasonRevoked,
			ReasonWrongPreview, ReasonWrongTenant, ReasonUnavailable} {
			v.rejections.WithLabelValues(r)
		}
	}
	return v, nil
}

// Verify checks token and returns its claims. Every failure matches one of
// the Err* variables; a backend failure matches ErrUnavailable and must be
// treated as a denial.
func (v *Verifier) Verify(ctx context.Context, token string) (Claims, error) {
	c, err := v.verify(ctx, token)
	if err != nil {
		v.reject(RejectionReason(err))
	}
	return c, err
}

func (v *Verifier) reject(reason string) {
	if v.rejections != nil {
		v.rejections.WithLabelValues(reason).Inc()
	}
}

func (v *Verifier) verify(ctx context.Context, token string) (Claims, error) {
	if len(token) > v.maxLen {
		return Claims{}, ErrTooLong
	}
	if token == "" {
		return Claims{}, ErrMalformed
	}
	now := v.now()
	var kid string
	var wire tokenWireClaims
	_, err := v.parser.ParseWithClaims(token, &wire, func(t *jwt.Token) (any, error) {
		if t.Method == nil || t.Method.Alg() != Algorithm {
			return nil, ErrAlgorithm
		}
		s, ok := t.Header["kid"].(string)
		if !ok {
			return nil, ErrUnknownKey
		}
		kid = s
		k, err := v.ring.verificationKeyAt(ctx, s, now)
		if err != nil {
			return nil, err
		}
		return k.Secret, nil
	})
	if err != nil {
		return Claims{}, tokenMapError(err)
	}
	// Claims golang-jwt does not require.
	if wire.IssuedAt == nil || wire.PreviewID == "" || wire.TenantID == "" {
		return Claims{}, ErrMissingClaim
	}
	if wire.ExpiresAt.Sub(wire.IssuedAt.Time) > v.ring.maxTTL {
		return Claims{}, ErrLifetimeTooLong
	}
	c := Claims{
		Issuer: wire.Issuer, Audience: Audience, Subject: wire.Subject,
		TenantID: wire.TenantID, PreviewID: wire.PreviewID, SystemID: wire.SystemID, Device: wire.Device,
		IssuedAt: wire.IssuedAt.UTC(), ExpiresAt: wire.ExpiresAt.UTC(), ID: wire.ID, KeyID: kid,
	}
	if wire.NotBefore != nil {
		c.NotBefore = wire.NotBefore.UTC()
	}
	if v.revocations != nil {
		if err := v.revocations.check(ctx, c); err != nil {
			return Claims{}, err
		}
	}
	return c, nil
}

// tokenMapError turns a golang-jwt error into exactly one typed error.
func tokenMapError(err error) error {
	switch {
	case errors.Is(err, ErrUnavailable):
		return err
	case errors.Is(err, ErrAlgorithm):
		return ErrAlgorithm
	case errors.Is(err, ErrUnknownKey):
		return ErrUnknownKey
	case errors.Is(err, jwt.ErrTokenMalformed):
		return ErrMalformed
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		// golang-jwt also reports an alg outside WithValidMethods (none,
		// HS384, RS256, ...) this way, without the HMAC error inside.
		if errors.Is(err, jwt.ErrSignatureInvalid) {
			return ErrBadSignature
		}
		return ErrAlgorithm
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		// alg missing or unknown to golang-jwt.
		return ErrAlgorithm
	case errors.Is(err, jwt.ErrTokenExpired):
		return ErrExpired
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return ErrNotYetValid
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return ErrMissingClaim
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return ErrInvalidAudience
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return ErrInvalidIssuer
	}
	return ErrMalformed
}
