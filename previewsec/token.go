package previewsec

import (
	"errors"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Audience is the "aud" of every preview token. A token for any other
// audience (the hub's own API tokens use "hub") is rejected, and a preview
// token is rejected by any verifier that expects another audience.
const Audience = "preview"

// DefaultIssuerName is the "iss" written and expected by default.
const DefaultIssuerName = "hardening-previewsec"

// DefaultMaxTokenLength is the longest token Verify will parse (4 KiB).
const DefaultMaxTokenLength = 4096

// algorithm is the only signing algorithm minted and accepted.
const algorithm = "HS256"

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
	// UserID becomes "sub" (Mint takes the caller's subject when it is
	// empty).
	UserID string
	// TenantID becomes "tid"; required (Mint takes the caller's tenant when
	// it is empty).
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

// Rejection reasons: the values RejectionReason returns, the bounded
// label values of hardening_previewsec_token_rejections_total.
const (
	reasonMissing      = "missing"
	reasonMalformed    = "malformed"
	reasonTooLong      = "too_long"
	reasonAlgorithm    = "algorithm"
	reasonUnknownKey   = "unknown_key"
	reasonSignature    = "signature"
	reasonExpired      = "expired"
	reasonNotYetValid  = "not_yet_valid"
	reasonClaims       = "claims"
	reasonLifetime     = "lifetime"
	reasonRevoked      = "revoked"
	reasonWrongPreview = "wrong_preview"
	reasonWrongTenant  = "wrong_tenant"
	reasonUnavailable  = "unavailable"
)

// rejectionReasons lists every reason, for the metric's label values.
var rejectionReasons = []string{reasonMissing, reasonMalformed, reasonTooLong, reasonAlgorithm, reasonUnknownKey,
	reasonSignature, reasonExpired, reasonNotYetValid, reasonClaims, reasonLifetime, reasonRevoked,
	reasonWrongPreview, reasonWrongTenant, reasonUnavailable}

// RejectionReason maps a Verify error to its metric label and log value:
// "too_long", "algorithm", "unknown_key", "signature", "expired",
// "not_yet_valid", "claims" (a missing claim, wrong audience or issuer),
// "lifetime", "revoked", "unavailable" (a store failure), or "malformed"
// for anything else. The middleware also counts "missing" (no token),
// "wrong_preview" and "wrong_tenant" (a valid token for another preview or
// tenant).
func RejectionReason(err error) string {
	switch {
	case errors.Is(err, ErrTooLong):
		return reasonTooLong
	case errors.Is(err, ErrAlgorithm):
		return reasonAlgorithm
	case errors.Is(err, ErrUnknownKey):
		return reasonUnknownKey
	case errors.Is(err, ErrBadSignature):
		return reasonSignature
	case errors.Is(err, ErrExpired):
		return reasonExpired
	case errors.Is(err, ErrNotYetValid):
		return reasonNotYetValid
	case errors.Is(err, ErrMissingClaim), errors.Is(err, ErrInvalidAudience), errors.Is(err, ErrInvalidIssuer):
		return reasonClaims
	case errors.Is(err, ErrLifetimeTooLong):
		return reasonLifetime
	case errors.Is(err, ErrRevoked):
		return reasonRevoked
	case errors.Is(err, ErrUnavailable):
		return reasonUnavailable
	}
	return reasonMalformed
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
