package main

import (
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/systembuilderhub/hardening/flags"
	"github.com/systembuilderhub/hardening/idempotency"
	"github.com/systembuilderhub/hardening/streamauth"
)

// The idempotency, streamauth and flags settings of the hub's environment.
// The packages read no environment; these functions turn it into their
// options, with errors naming the variable. Unset or empty variables keep
// the packages' defaults (and, for the streams per user, the hub's).

// Environment variables of the Idempotency-Key middleware.
const (
	envIdempotencyTTL         = "IDEMPOTENCY_TTL"          // duration, default idempotency.DefaultTTL (24h)
	envIdempotencyLockTimeout = "IDEMPOTENCY_LOCK_TIMEOUT" // duration, default idempotency.DefaultLockTimeout (30s)
)

// idempotencyOptionsFromEnv reads IDEMPOTENCY_TTL and
// IDEMPOTENCY_LOCK_TIMEOUT: positive Go durations such as "24h" or "30s".
func idempotencyOptionsFromEnv() ([]idempotency.Option, error) {
	ttl, err := envDuration(envIdempotencyTTL, idempotency.DefaultTTL)
	if err != nil {
		return nil, err
	}
	lock, err := envDuration(envIdempotencyLockTimeout, idempotency.DefaultLockTimeout)
	if err != nil {
		return nil, err
	}
	return []idempotency.Option{idempotency.WithTTL(ttl), idempotency.WithLockTimeout(lock)}, nil
}

// Environment variables of the stream registry.
const (
	envStreamKeepAlive     = "STREAMAUTH_KEEPALIVE"              // duration, default streamauth.DefaultKeepAlive (15s); negative disables
	envMaxStreamsPerUser   = "STREAMAUTH_MAX_STREAMS_PER_USER"   // int, default defaultMaxStreamsPerUser (20); 0 = unlimited
	envMaxStreamsPerTenant = "STREAMAUTH_MAX_STREAMS_PER_TENANT" // int, default 0 = unlimited
)

// streamOptionsFromEnv reads STREAMAUTH_KEEPALIVE (a Go duration; negative
// disables keep-alives, 0 means the default) and
// STREAMAUTH_MAX_STREAMS_PER_USER and STREAMAUTH_MAX_STREAMS_PER_TENANT
// (non-negative integers, 0 = unlimited). It returns options for the
// variables that are set only: setupStreams puts them after the hub's own
// defaults.
func streamOptionsFromEnv() ([]streamauth.Option, error) {
	var opts []streamauth.Option
	if v := os.Getenv(envStreamKeepAlive); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return nil, fmt.Errorf("streamauth: %s=%q: %w", envStreamKeepAlive, v, err)
		}
		opts = append(opts, streamauth.WithKeepAlive(d))
	}
	for _, e := range []struct {
		name string
		opt  func(int) streamauth.Option
	}{{envMaxStreamsPerUser, streamauth.WithMaxStreamsPerUser}, {envMaxStreamsPerTenant, streamauth.WithMaxStreamsPerTenant}} {
		v := os.Getenv(e.name)
		if v == "" {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("streamauth: %s=%q: want a non-negative integer", e.name, v)
		}
		opts = append(opts, e.opt(n))
	}
	return opts, nil
}

// Environment variables of the flags client.
const (
	envFlagsPollInterval = "FLAGS_POLL_INTERVAL" // duration, default flags.DefaultPollInterval (250ms)
	envFlagsMaxStaleness = "FLAGS_MAX_STALENESS" // duration, default flags.DefaultMaxStaleness (30s)
)

// flagOptionsFromEnv reads FLAGS_POLL_INTERVAL and FLAGS_MAX_STALENESS:
// positive Go durations such as "250ms" or "30s".
func flagOptionsFromEnv() ([]flags.Option, error) {
	var opts []flags.Option
	for _, v := range []struct {
		name string
		set  func(time.Duration) flags.Option
	}{{envFlagsPollInterval, flags.WithPollInterval}, {envFlagsMaxStaleness, flags.WithMaxStaleness}} {
		s := os.Getenv(v.name)
		if s == "" {
			continue
		}
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("flags: %s=%q: want a positive Go duration such as 250ms", v.name, s)
		}
		opts = append(opts, v.set(d))
	}
	return opts, nil
}
