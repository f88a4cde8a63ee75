package main

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening/flags"
	"github.com/systembuilderhub/hardening/idempotency"
	"github.com/systembuilderhub/hardening/streamauth"
)

// setEnv sets every variable of names to its value in env ("" when absent).
func setEnv(t *testing.T, names []string, env map[string]string) {
	t.Helper()
	for _, k := range names {
		t.Setenv(k, env[k])
	}
}

func TestIdempotencyOptionsFromEnv(t *testing.T) {
	names := []string{envIdempotencyTTL, envIdempotencyLockTimeout}
	for _, tt := range []struct {
		env        map[string]string
		ttl, lock  time.Duration
		wantErrVar string
	}{
		{env: nil, ttl: 24 * time.Hour, lock: 30 * time.Second},
		{env: map[string]string{envIdempotencyTTL: " ", envIdempotencyLockTimeout: ""}, ttl: 24 * time.Hour, lock: 30 * time.Second},
		{env: map[string]string{envIdempotencyTTL: "2h", envIdempotencyLockTimeout: " 10s "}, ttl: 2 * time.Hour, lock: 10 * time.Second},
		{env: map[string]string{envIdempotencyTTL: "soon"}, wantErrVar: envIdempotencyTTL},
		{env: map[string]string{envIdempotencyTTL: "0s"}, wantErrVar: envIdempotencyTTL},
		{env: map[string]string{envIdempotencyLockTimeout: "-1s"}, wantErrVar: envIdempotencyLockTimeout},
	} {
		setEnv(t, names, tt.env)
		opts, err := idempotencyOptionsFromEnv()
		if tt.wantErrVar != "" {
			require.Error(t, err, tt.env)
			assert.Contains(t, err.Error(), tt.wantErrVar+"=")
			assert.Contains(t, err.Error(), "want a positive duration such as 30s")
			continue
		}
		require.NoError(t, err, tt.env)
		m, err := idempotency.New(idempotency.NewMemoryStore(), opts...)
		require.NoError(t, err, tt.env)
		assert.Equal(t, tt.ttl, m.TTL(), tt.env)
		assert.Equal(t, tt.lock, m.LockTimeout(), tt.env)
	}
}

func TestStreamOptionsFromEnv(t *testing.T) {
	names := []string{envStreamKeepAlive, envMaxStreamsPerUser, envMaxStreamsPerTenant}
	for _, tt := range []struct {
		env        map[string]string
		wantOpts   int
		wantErrVar string
	}{
		{env: nil, wantOpts: 0}, // unset: setupStreams' defaults stand
		{env: map[string]string{envStreamKeepAlive: "5s", envMaxStreamsPerUser: "3", envMaxStreamsPerTenant: "100"}, wantOpts: 3},
		{env: map[string]string{envStreamKeepAlive: "-1s", envMaxStreamsPerUser: "0"}, wantOpts: 2},
		{env: map[string]string{envStreamKeepAlive: "soon"}, wantErrVar: envStreamKeepAlive},
		{env: map[string]string{envMaxStreamsPerUser: "-1"}, wantErrVar: envMaxStreamsPerUser},
		{env: map[string]string{envMaxStreamsPerTenant: "x"}, wantErrVar: envMaxStreamsPerTenant},
	} {
		setEnv(t, names, tt.env)
		opts, err := streamOptionsFromEnv()
		if tt.wantErrVar != "" {
			require.Error(t, err, tt.env)
			assert.Contains(t, err.Error(), "streamauth: "+tt.wantErrVar+"=")
			continue
		}
		require.NoError(t, err, tt.env)
		assert.Len(t, opts, tt.wantOpts, tt.env)
		reg, err := streamauth.NewRegistry(opts...)
		require.NoError(t, err, tt.env)
		require.NoError(t, reg.Close(context.Background()))
	}
}

func TestFlagOptionsFromEnv(t *testing.T) {
	names := []string{envFlagsPollInterval, envFlagsMaxStaleness}
	setEnv(t, names, map[string]string{envFlagsPollInterval: "100ms"})
	opts, err := flagOptionsFromEnv()
	require.NoError(t, err)
	assert.Len(t, opts, 1)
	_, err = flags.New(flags.NewMemoryStore(), opts...)
	require.NoError(t, err)

	setEnv(t, names, nil)
	opts, err = flagOptionsFromEnv()
	require.NoError(t, err)
	assert.Empty(t, opts, "unset: the package's defaults")

	for _, name := range names {
		for _, bad := range []string{"fast", "-1s", "0"} {
			setEnv(t, names, map[string]string{name: bad})
			_, err = flagOptionsFromEnv()
			require.Error(t, err, "%s=%s", name, bad)
			assert.Contains(t, err.Error(), "flags: "+name+"=")
		}
	}
}
