package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/systembuilderhub/hardening/previewsec"
	"github.com/systembuilderhub/hardening/previewsec/container"
	"github.com/systembuilderhub/hardening/previewsec/egress"
)

// The previewsec settings of the hub's environment. The packages read no
// environment; these functions turn it into their options, with errors
// naming the variable.

// Environment variables of the egress policy.
const (
	envEgressMode      = "PREVIEW_EGRESS_MODE"
	envEgressAllowlist = "PREVIEW_EGRESS_ALLOWLIST"
	envEgressDenylist  = "PREVIEW_EGRESS_DENYLIST"
)

// egressPolicyOptionsFromEnv reads PREVIEW_EGRESS_MODE (allowlist, the
// default, or public), PREVIEW_EGRESS_ALLOWLIST (comma list; empty denies
// everything in allowlist mode, and must be empty in public mode) and
// PREVIEW_EGRESS_DENYLIST (comma list, both modes).
func egressPolicyOptionsFromEnv() ([]egress.PolicyOption, error) {
	mode, err := egress.ParseMode(os.Getenv(envEgressMode))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", envEgressMode, err)
	}
	allow, err := egress.ParseAllowlist(os.Getenv(envEgressAllowlist))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", envEgressAllowlist, err)
	}
	if mode == egress.ModePublic && len(allow) > 0 {
		return nil, fmt.Errorf("%s: must be empty when %s=public (every public destination is allowed)", envEgressAllowlist, envEgressMode)
	}
	deny, err := egress.ParseDenylist(os.Getenv(envEgressDenylist))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", envEgressDenylist, err)
	}
	return []egress.PolicyOption{egress.WithMode(mode), egress.WithAllow(allow...), egress.WithDeny(deny...)}, nil
}

// Environment variables of the container verifier.
const (
	envCPULimit     = "PREVIEW_CPU_LIMIT"
	envMemLimit     = "PREVIEW_MEM_LIMIT"
	envNetworkMode  = "PREVIEW_NETWORK_MODE"
	envSecurityOpts = "PREVIEW_SECURITY_OPTS"
	envDockerHost   = "DOCKER_HOST"
)

// containerLimitsFromEnv reads PREVIEW_CPU_LIMIT (CPUs, default 0.5),
// PREVIEW_MEM_LIMIT (bytes with an optional k/m/g suffix, default 512m),
// PREVIEW_NETWORK_MODE (default bridge) and PREVIEW_SECURITY_OPTS (comma
// list, default no-new-privileges; set and empty means none).
func containerLimitsFromEnv() (container.Limits, error) {
	l := container.DefaultLimits()
	if s := strings.TrimSpace(os.Getenv(envCPULimit)); s != "" {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || !(v > 0) || v > 1e6 {
			return l, fmt.Errorf("%s=%q: want a positive number of CPUs", envCPULimit, s)
		}
		l.CPUs = v
	}
	if s := strings.TrimSpace(os.Getenv(envMemLimit)); s != "" {
		v, err := container.ParseMemory(s)
		if err != nil {
			return l, fmt.Errorf("%s=%q: %w", envMemLimit, s, err)
		}
		l.MemoryBytes = v
	}
	if s := strings.TrimSpace(os.Getenv(envNetworkMode)); s != "" {
		l.NetworkMode = s
	}
	if s, ok := os.LookupEnv(envSecurityOpts); ok {
		l.SecurityOpts = nil
		for f := range strings.SplitSeq(s, ",") {
			if f = strings.TrimSpace(f); f != "" {
				l.SecurityOpts = append(l.SecurityOpts, f)
			}
		}
	}
	return l, nil
}

// containerVerifierFromEnv builds the verifier from containerLimitsFromEnv
// and DOCKER_HOST (default container.DefaultDockerHost); opts come after.
func containerVerifierFromEnv(opts ...container.Option) (*container.Verifier, error) {
	limits, err := containerLimitsFromEnv()
	if err != nil {
		return nil, err
	}
	host := strings.TrimSpace(os.Getenv(envDockerHost))
	if host != "" {
		opts = append([]container.Option{container.WithDockerHost(host)}, opts...)
	}
	v, err := container.NewVerifier(limits, opts...)
	if err != nil && host != "" {
		return nil, fmt.Errorf("%s: %w", envDockerHost, err)
	}
	return v, err
}

// Environment variables of the preview tokens.
const (
	envJWTSecret   = "PREVIEW_JWT_SECRET"
	envTokenTTL    = "PREVIEW_TOKEN_TTL"
	envTokenMaxTTL = "PREVIEW_TOKEN_MAX_TTL"
	envKeyRotation = "PREVIEW_KEY_ROTATION"
	envTokenLeeway = "PREVIEW_TOKEN_LEEWAY"
)

// previewTokenConfig is the preview-token settings of the environment.
type previewTokenConfig struct {
	// Secret is PREVIEW_JWT_SECRET; empty means random keys shared through
	// the key store, non-empty means previewsec.NewDerivedKeyRing.
	Secret []byte
	// TTL is PREVIEW_TOKEN_TTL (default previewsec.DefaultTTL).
	TTL time.Duration
	// MaxTTL is PREVIEW_TOKEN_MAX_TTL (default: the larger of
	// previewsec.DefaultMaxTTL and TTL).
	MaxTTL time.Duration
	// Rotation is PREVIEW_KEY_ROTATION (default previewsec.DefaultRotation).
	Rotation time.Duration
	// Leeway is PREVIEW_TOKEN_LEEWAY (default previewsec.DefaultLeeway).
	Leeway time.Duration
}

// previewTokenConfigFromEnv reads the preview-token settings. A value that
// does not parse, or breaks a limit, is an error naming the variable.
func previewTokenConfigFromEnv() (previewTokenConfig, error) {
	c := previewTokenConfig{TTL: previewsec.DefaultTTL, Rotation: previewsec.DefaultRotation, Leeway: previewsec.DefaultLeeway}
	if s := os.Getenv(envJWTSecret); s != "" {
		if len(s) < previewsec.MinSecretSize {
			return c, fmt.Errorf("%s: must be at least %d bytes", envJWTSecret, previewsec.MinSecretSize)
		}
		c.Secret = []byte(s)
	}
	for _, v := range []struct {
		name string
		dst  *time.Duration
	}{{envTokenTTL, &c.TTL}, {envKeyRotation, &c.Rotation}, {envTokenLeeway, &c.Leeway}} {
		if err := previewEnvDuration(v.name, v.dst); err != nil {
			return c, err
		}
	}
	c.MaxTTL = max(previewsec.DefaultMaxTTL, c.TTL)
	if err := previewEnvDuration(envTokenMaxTTL, &c.MaxTTL); err != nil {
		return c, err
	}
	switch {
	case c.TTL <= 0:
		return c, fmt.Errorf("%s: must be positive", envTokenTTL)
	case c.MaxTTL < c.TTL:
		return c, fmt.Errorf("%s: %s is below %s %s", envTokenMaxTTL, c.MaxTTL, envTokenTTL, c.TTL)
	case c.Leeway < 0 || c.Leeway > previewsec.MaxLeeway:
		return c, fmt.Errorf("%s: must be between 0 and %s", envTokenLeeway, previewsec.MaxLeeway)
	}
	// The key ring's own check of the rotation period, on a throwaway ring.
	if _, err := previewsec.NewDerivedKeyRing(make([]byte, previewsec.MinSecretSize), previewsec.WithKeyRotation(c.Rotation)); err != nil {
		return c, fmt.Errorf("%s: %w", envKeyRotation, err)
	}
	return c, nil
}

// previewEnvDuration sets *dst from the variable name when it is set.
func previewEnvDuration(name string, dst *time.Duration) error {
	s := os.Getenv(name)
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

// keyRingOptions returns the key ring options of c.
func (c previewTokenConfig) keyRingOptions() []previewsec.KeyRingOption {
	return []previewsec.KeyRingOption{previewsec.WithKeyRotation(c.Rotation), previewsec.WithMaxTTL(c.MaxTTL), previewsec.WithLeeway(c.Leeway)}
}

// revocationOptions returns the revocation list options of c: entries are
// kept as long as a token they revoke could be valid.
func (c previewTokenConfig) revocationOptions() []previewsec.RevocationOption {
	return []previewsec.RevocationOption{previewsec.WithRevocationRetention(c.MaxTTL + previewsec.MaxLeeway)}
}
