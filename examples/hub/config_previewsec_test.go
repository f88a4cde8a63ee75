package main

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening/previewsec/container"
	"github.com/systembuilderhub/hardening/previewsec/egress"
)

func TestEgressPolicyFromEnv(t *testing.T) {
	t.Setenv(envEgressAllowlist, " 1.1.1.1:443 , *.example.com ,,")
	t.Setenv(envEgressDenylist, "blocked.example.com, 1.1.1.0/24")
	opts, err := egressPolicyOptionsFromEnv()
	require.NoError(t, err)
	p, err := egress.NewPolicy(opts...)
	require.NoError(t, err)
	assert.Equal(t, egress.ReasonDenylisted, p.Decide(context.Background(), "1.1.1.1", 443).Reason)
	assert.Equal(t, egress.ReasonDenylisted, p.Decide(context.Background(), "blocked.example.com", 443).Reason)

	t.Setenv(envEgressAllowlist, "api.openai.com, 0x7f.1")
	_, err = egressPolicyOptionsFromEnv()
	require.Error(t, err)
	assert.Contains(t, err.Error(), envEgressAllowlist)

	t.Setenv(envEgressAllowlist, "")
	t.Setenv(envEgressDenylist, "bad host")
	_, err = egressPolicyOptionsFromEnv()
	require.Error(t, err)
	assert.Contains(t, err.Error(), envEgressDenylist)

	// The mode: allowlist by default, public on request.
	t.Setenv(envEgressDenylist, "")
	for value, want := range map[string]egress.Mode{"": egress.ModeAllowlist, "allowlist": egress.ModeAllowlist, "public": egress.ModePublic} {
		t.Setenv(envEgressMode, value)
		opts, err := egressPolicyOptionsFromEnv()
		require.NoError(t, err, value)
		p, err := egress.NewPolicy(opts...)
		require.NoError(t, err, value)
		assert.Equal(t, want, p.Mode(), value)
	}
	t.Setenv(envEgressMode, "everything")
	_, err = egressPolicyOptionsFromEnv()
	require.Error(t, err)
	assert.Contains(t, err.Error(), envEgressMode)
	t.Setenv(envEgressMode, "public")
	t.Setenv(envEgressAllowlist, "api.openai.com")
	_, err = egressPolicyOptionsFromEnv()
	require.Error(t, err)
	assert.Contains(t, err.Error(), envEgressAllowlist)
}

func TestContainerLimitsFromEnv(t *testing.T) {
	for _, k := range []string{envCPULimit, envMemLimit, envNetworkMode, envSecurityOpts} {
		t.Setenv(k, "")
		require.NoError(t, os.Unsetenv(k))
	}
	l, err := containerLimitsFromEnv()
	require.NoError(t, err)
	assert.Equal(t, container.DefaultLimits(), l)

	t.Setenv(envCPULimit, "1.5")
	t.Setenv(envMemLimit, "2g")
	t.Setenv(envNetworkMode, "preview-net")
	t.Setenv(envSecurityOpts, "no-new-privileges, apparmor=docker-default")
	l, err = containerLimitsFromEnv()
	require.NoError(t, err)
	assert.Equal(t, 1.5, l.CPUs)
	assert.Equal(t, int64(2<<30), l.MemoryBytes)
	assert.Equal(t, "preview-net", l.NetworkMode)
	assert.Equal(t, []string{"no-new-privileges", "apparmor=docker-default"}, l.SecurityOpts)

	t.Setenv(envCPULimit, "lots")
	_, err = containerLimitsFromEnv()
	require.Error(t, err)
	assert.Contains(t, err.Error(), envCPULimit)
	t.Setenv(envCPULimit, "0.5")
	t.Setenv(envMemLimit, "12x")
	_, err = containerLimitsFromEnv()
	require.Error(t, err)
	assert.Contains(t, err.Error(), envMemLimit)

	t.Setenv(envMemLimit, "512m")
	t.Setenv(envDockerHost, "ftp://x")
	_, err = containerVerifierFromEnv()
	require.Error(t, err)
	assert.Contains(t, err.Error(), envDockerHost)
}

func TestPreviewTokenConfigFromEnv(t *testing.T) {
	for _, k := range []string{envJWTSecret, envTokenTTL, envTokenMaxTTL, envKeyRotation, envTokenLeeway} {
		t.Setenv(k, "")
	}
	c, err := previewTokenConfigFromEnv()
	require.NoError(t, err)
	assert.Equal(t, previewTokenConfig{TTL: time.Hour, MaxTTL: time.Hour, Rotation: 24 * time.Hour, Leeway: 30 * time.Second}, c)

	t.Setenv(envTokenTTL, "90m")
	t.Setenv(envKeyRotation, "6h")
	t.Setenv(envJWTSecret, strings.Repeat("s", 32))
	c, err = previewTokenConfigFromEnv()
	require.NoError(t, err)
	assert.Equal(t, 90*time.Minute, c.MaxTTL, "max follows a longer TTL")
	assert.Equal(t, 6*time.Hour, c.Rotation)
	assert.Len(t, c.Secret, 32)

	for name, val := range map[string]string{
		envTokenTTL:    "soon",
		envKeyRotation: "7h",
		envJWTSecret:   "too-short",
		envTokenLeeway: "5m",
		envTokenMaxTTL: "10m",
	} {
		t.Run(name, func(t *testing.T) {
			t.Setenv(name, val)
			_, err := previewTokenConfigFromEnv()
			require.Error(t, err)
			assert.Contains(t, err.Error(), name)
		})
	}
}
