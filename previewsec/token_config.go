package previewsec

import (
	"fmt"
	"os"
	"time"
)

// Environment variables read by TokenConfigFromEnv.
const (
	EnvJWTSecret   = "PREVIEW_JWT_SECRET"
	EnvTokenTTL    = "PREVIEW_TOKEN_TTL"
	EnvTokenMaxTTL = "PREVIEW_TOKEN_MAX_TTL"
	EnvKeyRotation = "PREVIEW_KEY_ROTATION"
	EnvTokenLeeway = "PREVIEW_TOKEN_LEEWAY"
)

// TokenConfig is the token half's configuration from the environment.
type TokenConfig struct {
	// Secret is PREVIEW_JWT_SECRET; empty means "use a KeyStore" (random
	// keys shared by the store), non-empty means NewDerivedKeyRing.
	Secret []byte
	// TTL is PREVIEW_TOKEN_TTL (default DefaultTTL).
	TTL time.Duration
	// MaxTTL is PREVIEW_TOKEN_MAX_TTL (default: the larger of
	// DefaultMaxTTL and TTL).
	MaxTTL time.Duration
	// Rotation is PREVIEW_KEY_ROTATION (default DefaultRotation).
	Rotation time.Duration
	// Leeway is PREVIEW_TOKEN_LEEWAY (default DefaultLeeway).
	Leeway time.Duration
}

// TokenConfigFromEnv reads the token settings from the environment. A value
// that does not parse, or breaks a limit, is an error naming the variable.
func TokenConfigFromEnv() (TokenConfig, error) {
	return tokenConfigFrom(os.Getenv)
}

func tokenConfigFrom(getenv func(string) string) (TokenConfig, error) {
	c := TokenConfig{TTL: DefaultTTL, Rotation: DefaultRotation, Leeway: DefaultLeeway}
	if s := getenv(EnvJWTSecret); s != "" {
		if len(s) < MinSecretSize {
			return TokenConfig{}, fmt.Errorf("%s: must be at least %d bytes", EnvJWTSecret, MinSecretSize)
		}
		c.Secret = []byte(s)
	}
	dur := func(name string, dst *time.Duration) error {
		s := getenv(name)
		if s == "" {
			return nil
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("%s=%q: %w", name, s, err)
		}
		*dst = d
		return nil
	}
	for _, v := range []struct {
		name string
		dst  *time.Duration
	}{{EnvTokenTTL, &c.TTL}, {EnvKeyRotation, &c.Rotation}, {EnvTokenLeeway, &c.Leeway}} {
		if err := dur(v.name, v.dst); err != nil {
			return TokenConfig{}, err
		}
	}
	c.MaxTTL = max(DefaultMaxTTL, c.TTL)
	if err := dur(EnvTokenMaxTTL, &c.MaxTTL); err != nil {
		return TokenConfig{}, err
	}
	switch {
	case c.TTL <= 0:
		return TokenConfig{}, fmt.Errorf("%s: must be positive", EnvTokenTTL)
	case c.MaxTTL < c.TTL:
		return TokenConfig{}, fmt.Errorf("%s: %s is below %s %s", EnvTokenMaxTTL, c.MaxTTL, EnvTokenTTL, c.TTL)
	case c.Leeway < 0 || c.Leeway > MaxLeeway:
		return TokenConfig{}, fmt.Errorf("%s: must be between 0 and %s", EnvTokenLeeway, MaxLeeway)
	}
	if err := WithKeyRotation(c.Rotation)(&KeyRing{}); err != nil {
		return TokenConfig{}, fmt.Errorf("%s: %w", EnvKeyRotation, err)
	}
	return c, nil
}

// KeyRingOptions returns the key ring options of c.
func (c TokenConfig) KeyRingOptions() []KeyRingOption {
	return []KeyRingOption{WithKeyRotation(c.Rotation), WithKeyRingMaxTTL(c.MaxTTL), WithKeyRingLeeway(c.Leeway)}
}

// IssuerOptions returns the issuer options of c.
func (c TokenConfig) IssuerOptions() []IssuerOption {
	return []IssuerOption{WithDefaultTTL(c.TTL)}
}

// RevocationOptions returns the revocation list options of c.
func (c TokenConfig) RevocationOptions() []RevocationOption {
	return []RevocationOption{WithRevocationRetention(c.MaxTTL + MaxLeeway)}
}
