package main

import (
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/systembuilderhub/hardening/flags"
	"github.com/systembuilderhub/hardening/idempotency"
	"github.com/systembuilderhub/hardening/migrate"
	"github.com/systembuilderhub/hardening/streamauth"
	"github.com/systembuilderhub/hardening/tenancy"
)

// config is everything the hub reads from its environment.
type config struct {
	// Addr is HUB_ADDR (default 127.0.0.1:8080).
	Addr string
	// DatabaseURL is DATABASE_URL (default sqlite:///hub.db, relative to
	// the working directory; sqlite:////abs/path.db for an absolute path;
	// postgres://… or postgresql://… for PostgreSQL, see postgres.go).
	DatabaseURL string
	// DBPath is the SQLite file named by DatabaseURL; empty on Postgres.
	DBPath string
	// RedisURL is REDIS_URL; empty means every store uses SQLite.
	RedisURL string
	// RedisPrefix is HUB_REDIS_PREFIX (default "hub:"): every Redis key and
	// channel of the hub starts with it, so several hubs or tests can share
	// one Redis.
	RedisPrefix string
	// AuthSecret signs and verifies the hub's bearer tokens (HUB_AUTH_SECRET).
	// Empty in the environment means a development secret kept in the
	// database (see devAuthSecret).
	AuthSecret []byte
	// AuthSecretFromEnv reports whether AuthSecret came from HUB_AUTH_SECRET.
	AuthSecretFromEnv bool
	// AuthMaxTTL is HUB_AUTH_MAX_TTL (default 24h): the longest lifetime
	// of a bearer token, exp-iat (or exp-now when iat is absent). Longer
	// tokens are refused, on the REST routes and the streams alike; zero
	// means the default.
	AuthMaxTTL time.Duration
	// Migrations is the startup check policy (MIGRATIONS_CHECK_ON_STARTUP,
	// MIGRATIONS_AUTO_APPLY, STRICT_DB_STARTUP; see config_migrate.go).
	Migrations migrate.Policy
	// MaxConns is HUB_MAX_CONNS (default defaultMaxConns): the most client
	// connections the server holds open at once; the next one waits in
	// the listen backlog until one closes.
	MaxConns int
	// BodyTimeout is HUB_BODY_TIMEOUT (default defaultBodyTimeout): how
	// long a request may take to deliver its body; zero means no limit.
	BodyTimeout time.Duration
	// WriteTimeout is HUB_WRITE_TIMEOUT (default defaultWriteTimeout): how
	// long a request may take from its headers to the end of its response,
	// except on the streams; zero means no limit.
	WriteTimeout time.Duration
	// TrustedProxies is HUB_TRUSTED_PROXIES (default none): the reverse
	// proxies in front of the hub, whose X-Forwarded-Proto decides whether
	// the preview cookie is Secure (previewsec.SecureFromConnection).
	TrustedProxies []netip.Prefix
}

const (
	// envAuthMaxTTL names the variable of config.AuthMaxTTL.
	envAuthMaxTTL = "HUB_AUTH_MAX_TTL"
	// envRedisPrefix names the variable of config.RedisPrefix.
	envRedisPrefix = "HUB_REDIS_PREFIX"
	// defaultRedisPrefix is config.RedisPrefix when the variable is unset.
	defaultRedisPrefix = "hub:"
)

func configFromEnv() (config, error) {
	c := config{
		Addr:        envOr("HUB_ADDR", "127.0.0.1:8080"),
		DatabaseURL: envOr("DATABASE_URL", "sqlite:///hub.db"),
		RedisURL:    strings.TrimSpace(os.Getenv("REDIS_URL")),
		RedisPrefix: envOr(envRedisPrefix, defaultRedisPrefix),
	}
	var err error
	if isPostgresURL(c.DatabaseURL) {
		err = checkPostgresURL(c.DatabaseURL)
	} else {
		c.DBPath, err = sqlitePath(c.DatabaseURL)
	}
	if err != nil {
		return c, err
	}
	if c.RedisURL != "" && strings.ContainsAny(c.RedisPrefix, "{}") {
		// Braces would make a Redis Cluster hash tag of the prefix.
		return c, fmt.Errorf("%s=%q: must not contain { or }", envRedisPrefix, c.RedisPrefix)
	}
	if s := os.Getenv("HUB_AUTH_SECRET"); s != "" {
		if len(s) < 16 {
			return c, fmt.Errorf("HUB_AUTH_SECRET: must be at least 16 bytes, got %d", len(s))
		}
		c.AuthSecret, c.AuthSecretFromEnv = []byte(s), true
	}
	if c.AuthMaxTTL, err = envDuration(envAuthMaxTTL, defaultAuthMaxTTL); err != nil {
		return c, err
	}
	if c.Migrations, err = migrationPolicyFromEnv(); err != nil {
		return c, err
	}
	if c.MaxConns, err = envPositiveInt(envMaxConns, defaultMaxConns); err != nil {
		return c, err
	}
	if c.BodyTimeout, err = envDuration(envBodyTimeout, defaultBodyTimeout); err != nil {
		return c, err
	}
	if c.WriteTimeout, err = envDuration(envWriteTimeout, defaultWriteTimeout); err != nil {
		return c, err
	}
	if c.TrustedProxies, err = parseTrustedProxies(os.Getenv(envTrustedProxies)); err != nil {
		return c, err
	}
	return c, nil
}

// featureEnv is the feature packages' part of the environment. newApp
// reads it before it opens the database, so a bad value is reported
// before anything is written to disk.
type featureEnv struct {
	idempotency   []idempotency.Option // IDEMPOTENCY_*
	quotas        quotaDefaults        // DEFAULT_* quota limits
	previewLease  time.Duration        // HUB_PREVIEW_LEASE
	modelDelay    time.Duration        // HUB_STUB_MODEL_DELAY
	previewTokens previewTokenConfig   // PREVIEW_JWT_SECRET, PREVIEW_TOKEN_*, PREVIEW_KEY_ROTATION
	streams       []streamauth.Option  // STREAMAUTH_*
	heartbeat     time.Duration        // HUB_STREAM_HEARTBEAT
	flags         []flags.Option       // FLAGS_*
	echoDelay     time.Duration        // HUB_ECHO_DELAY
}

// featureEnvFromEnv reads featureEnv; the error names the variable.
func featureEnvFromEnv() (featureEnv, error) {
	var e featureEnv
	var err error
	if e.idempotency, err = idempotencyOptionsFromEnv(); err != nil {
		return e, err
	}
	if e.quotas, err = quotaDefaultsFromEnv(); err != nil {
		return e, err
	}
	if e.previewLease, err = envDuration(envPreviewLease, previewLease); err != nil {
		return e, err
	}
	if e.modelDelay, err = envDuration(envStubModelDelay, 0); err != nil {
		return e, err
	}
	if e.previewTokens, err = previewTokenConfigFromEnv(); err != nil {
		return e, err
	}
	if e.streams, err = streamOptionsFromEnv(); err != nil {
		return e, err
	}
	if e.heartbeat, err = envDuration(envStreamHeartbeat, defaultStreamHeartbeat); err != nil {
		return e, err
	}
	if e.flags, err = flagOptionsFromEnv(); err != nil {
		return e, err
	}
	if e.echoDelay, err = envDuration(envEchoDelay, 0); err != nil {
		return e, err
	}
	return e, nil
}

// envTrustedProxies names the variable of config.TrustedProxies.
const envTrustedProxies = "HUB_TRUSTED_PROXIES"

// parseTrustedProxies reads a comma list of CIDR prefixes and addresses
// (an address stands for itself alone).
func parseTrustedProxies(raw string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for f := range strings.SplitSeq(raw, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if p, err := netip.ParsePrefix(f); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil || a.Zone() != "" {
			return nil, fmt.Errorf("%s: %q is neither an IP address nor a CIDR prefix", envTrustedProxies, f)
		}
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// sqlitePath turns sqlite:///relative.db or sqlite:////abs/file.db into a
// file path.
func sqlitePath(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "sqlite" {
		return "", fmt.Errorf("DATABASE_URL=%q: want sqlite:///path/to/file.db (relative), sqlite:////abs/path.db or postgres://user@host/db", raw)
	}
	if u.Host != "" || u.RawQuery != "" {
		return "", fmt.Errorf("DATABASE_URL=%q: want sqlite:///path/to/file.db with no host and no query", raw)
	}
	p := strings.TrimPrefix(u.Path, "/")
	if p == "" || strings.HasSuffix(p, "/") {
		return "", fmt.Errorf("DATABASE_URL=%q: no database file named", raw)
	}
	return p, nil
}

// envDuration reads a positive duration from name, def when unset.
func envDuration(name string, def time.Duration) (time.Duration, error) {
	v := strings.TrimSpace(os.Getenv(name))
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%s=%q: want a positive duration such as 30s", name, v)
	}
	return d, nil
}

// envPositiveInt reads an integer >= 1 from name, def when unset.
func envPositiveInt(name string, def int) (int, error) {
	v := strings.TrimSpace(os.Getenv(name))
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("%s=%q: want an integer of at least 1", name, v)
	}
	return n, nil
}

func envOr(name, def string) string {
	if v := strings.TrimSpace(os.Getenv(name)); v != "" {
		return v
	}
	return def
}

// Default quota limits of the hub (quotaDefaultsFromEnv).
const (
	envActivePreviews     = "DEFAULT_ACTIVE_PREVIEWS_LIMIT"    // integer, default 5
	envSnapshotsPerMinute = "DEFAULT_SNAPSHOT_RATE_PER_MINUTE" // integer, default 10
	envLLMMonthlyBudget   = "DEFAULT_LLM_MONTHLY_BUDGET_USD"   // decimal USD, default 100.0
)

// quotaDefaults are the limits of tenants without overrides.
type quotaDefaults struct {
	ActivePreviews     int64
	SnapshotsPerMinute int64
	LLMMonthlyBudget   tenancy.Micros
}

// quotaDefaultsFromEnv reads the default quota limits; unset or empty
// variables keep 5 previews, 10 snapshots a minute and 100 USD a month. A
// value that does not parse, is negative or is above tenancy.MaxLimit is
// an error naming the variable.
func quotaDefaultsFromEnv() (quotaDefaults, error) {
	d := quotaDefaults{ActivePreviews: 5, SnapshotsPerMinute: 10, LLMMonthlyBudget: 100 * tenancy.MicrosPerUSD}
	for _, iv := range []struct {
		name string
		dst  *int64
	}{{envActivePreviews, &d.ActivePreviews}, {envSnapshotsPerMinute, &d.SnapshotsPerMinute}} {
		if v := strings.TrimSpace(os.Getenv(iv.name)); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 || n > tenancy.MaxLimit {
				return d, fmt.Errorf("%s=%q: want an integer from 0 to %d", iv.name, v, int64(tenancy.MaxLimit))
			}
			*iv.dst = n
		}
	}
	if v := strings.TrimSpace(os.Getenv(envLLMMonthlyBudget)); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		m, merr := tenancy.MicrosFromUSD(f)
		if err != nil || merr != nil {
			return d, fmt.Errorf("%s=%q: want a decimal USD amount from 0 to 9007199254.74", envLLMMonthlyBudget, v)
		}
		d.LLMMonthlyBudget = m
	}
	return d, nil
}
