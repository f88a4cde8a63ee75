package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/systembuilderhub/hardening/previewsec/container"
	"github.com/systembuilderhub/hardening/previewsec/egress"
)

// The previewsec settings of the hub's environment. The packages read no
// environment; these functions turn it into their options, with errors
// naming the variable.

// Environment variables of the egress policy.
const (
	envEgressAllowlist = "PREVIEW_EGRESS_ALLOWLIST"
	envEgressDenylist  = "PREVIEW_EGRESS_DENYLIST"
)

// egressPolicyOptionsFromEnv reads PREVIEW_EGRESS_ALLOWLIST and
// PREVIEW_EGRESS_DENYLIST (comma lists; an empty allowlist denies
// everything).
func egressPolicyOptionsFromEnv() ([]egress.PolicyOption, error) {
	allow, err := egress.ParseAllowlist(os.Getenv(envEgressAllowlist))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", envEgressAllowlist, err)
	}
	deny, err := egress.ParseDenylist(os.Getenv(envEgressDenylist))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", envEgressDenylist, err)
	}
	return []egress.PolicyOption{egress.WithAllow(allow...), egress.WithDeny(deny...)}, nil
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
