package previewsec

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/systembuilderhub/hardening/internal/tokencache"
)

// Verifier checks preview tokens. It accepts only HS256 tokens whose "kid"
// names a key of the ring that still verifies, with "exp", "iat", "aud"
// (= Audience), "iss", "pid" and "tid" present, "exp"-"iat" at most the
// ring's max TTL, and exp, nbf and iat checked against the clock with the
// ring's leeway. Tokens longer than the length cap are rejected before any
// parsing. With a RevocationList, revoked previews and tokens are rejected.
// Verified tokens are cached (WithTokenCache); revocation is checked on
// every Verify.
type Verifier struct {
	ring        *KeyRing
	issuer      string
	maxLen      int
	now         func() time.Time
	log         *slog.Logger
	revocations *RevocationList
	parser      *jwt.Parser
	reg         prometheus.Registerer
	rejections  *prometheus.CounterVec
	cacheSize   int
	cache       *tokencache.Cache[cachedToken]
}

// WithExpectedIssuer sets the required "iss" (default DefaultIssuerName).
func WithExpectedIssuer(name string) VerifierOption {
	return verifierOption(func(v *Verifier) { v.issuer = name })
}

// WithMaxTokenLength sets the length cap (default DefaultMaxTokenLength).
func WithMaxTokenLength(n int) VerifierOption {
	return verifierOption(func(v *Verifier) { v.maxLen = n })
}

// WithRevocations makes the Verifier reject tokens revoked in l.
func WithRevocations(l *RevocationList) VerifierOption {
	return verifierOption(func(v *Verifier) { v.revocations = l })
}

// NewVerifier returns a Verifier using ring's keys, max TTL and leeway.
func NewVerifier(ring *KeyRing, opts ...VerifierOption) (*Verifier, error) {
	if ring == nil {
		return nil, errors.New("previewsec: NewVerifier needs a KeyRing")
	}
	v := &Verifier{ring: ring, issuer: DefaultIssuerName, maxLen: DefaultMaxTokenLength, now: ring.now,
		cacheSize: DefaultTokenCacheSize}
	for _, o := range opts {
		if o != nil {
			o.applyVerifier(v)
		}
	}
	switch {
	case v.issuer == "":
		return nil, errors.New("previewsec: empty issuer name")
	case v.maxLen < 64:
		return nil, fmt.Errorf("previewsec: max token length %d too small", v.maxLen)
	case v.cacheSize < 0:
		return nil, fmt.Errorf("previewsec: negative token cache size %d", v.cacheSize)
	}
	v.cache = tokencache.New[cachedToken](v.cacheSize)
	if err := checkClock(v.now); err != nil {
		return nil, err
	}
	var err error
	if v.rejections, err = rejectionCounter(v.reg); err != nil {
		return nil, err
	}
	if v.revocations != nil && v.revocations.retention < ring.maxTTL+ring.leeway {
		return nil, fmt.Errorf("previewsec: revocation retention %s is shorter than max TTL + leeway %s",
			v.revocations.retention, ring.maxTTL+ring.leeway)
	}
	if v.log == nil {
		v.log = slog.New(slog.DiscardHandler)
	}
	v.parser = jwt.NewParser(
		jwt.WithValidMethods([]string{algorithm}),
		jwt.WithAudience(Audience),
		jwt.WithIssuer(v.issuer),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(ring.leeway),
		jwt.WithTimeFunc(v.now),
		jwt.WithStrictDecoding(),
	)
	if v.rejections != nil {
		for _, r := range rejectionReasons {
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
	var key tokencache.Key
	var c Claims
	ok, cacheable := false, v.cache != nil && tokencache.Cacheable(token)
	if cacheable {
		key = tokencache.KeyOf(token)
		c, ok = v.cached(key, now)
	}
	if !ok {
		var secret []byte
		var err error
		if c, secret, err = v.parse(ctx, token, now); err != nil {
			return Claims{}, err
		}
		if cacheable {
			v.remember(key, c, secret, now)
		}
	}
	if v.revocations != nil {
		if err := v.revocations.check(ctx, c); err != nil {
			return Claims{}, err
		}
	}
	return c, nil
}

// parse checks token's signature and claims in full and returns its
// claims and the secret of the key that verified it.
func (v *Verifier) parse(ctx context.Context, token string, now time.Time) (Claims, []byte, error) {
	var kid string
	var secret []byte
	var wire tokenWireClaims
	_, err := v.parser.ParseWithClaims(token, &wire, func(t *jwt.Token) (any, error) {
		if t.Method == nil || t.Method.Alg() != algorithm {
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
		secret = k.Secret
		return k.Secret, nil
	})
	if err != nil {
		return Claims{}, nil, tokenMapError(err)
	}
	// Claims golang-jwt does not require.
	if wire.IssuedAt == nil || wire.PreviewID == "" || wire.TenantID == "" {
		return Claims{}, nil, ErrMissingClaim
	}
	if wire.ExpiresAt.Sub(wire.IssuedAt.Time) > v.ring.maxTTL {
		return Claims{}, nil, ErrLifetimeTooLong
	}
	c := Claims{
		Issuer: wire.Issuer, Audience: Audience, Subject: wire.Subject,
		TenantID: wire.TenantID, PreviewID: wire.PreviewID, SystemID: wire.SystemID, Device: wire.Device,
		IssuedAt: wire.IssuedAt.UTC(), ExpiresAt: wire.ExpiresAt.UTC(), ID: wire.ID, KeyID: kid,
	}
	if wire.NotBefore != nil {
		c.NotBefore = wire.NotBefore.UTC()
	}
	return c, secret, nil
}
