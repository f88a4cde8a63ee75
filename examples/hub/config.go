package main

import (
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/systembuilderhub/hardening/migrate"
	"github.com/systembuilderhub/hardening/tenancy"
)

// config is everything the hub reads from its environment.
type config struct {
	// Addr is HUB_ADDR (default 127.0.0.1:8080).
	Addr string
	// DatabaseURL is DATABASE_URL (default sqlite:///hub.db, relative to
	// the working directory; sqlite:////abs/path.db for an absolute path).
	DatabaseURL string
	// DBPath is the SQLite file named by DatabaseURL.
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
	// Migrations is the startup check policy (MIGRATIONS_CHECK_ON_STARTUP,
	// MIGRATIONS_AUTO_APPLY, STRICT_DB_STARTUP).
	Migrations migrate.Policy
}

const (
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
	if c.DBPath, err = sqlitePath(c.DatabaseURL); err != nil {
		return c, err
	}
	if s := os.Getenv("HUB_AUTH_SECRET"); s != "" {
		if len(s) < 16 {
			return c, fmt.Errorf("HUB_AUTH_SECRET: must be at least 16 bytes, got %d", len(s))
		}
		c.AuthSecret, c.AuthSecretFromEnv = []byte(s), true
	}
	if c.Migrations, err = migrate.PolicyFromEnv(); err != nil {
		return c, err
	}
	c.Migrations.UpCommand = "go run ./examples/hub migrate up"
	return c, nil
}

// sqlitePath turns sqlite:///relative.db or sqlite:////abs/file.db into a
// file path.
func sqlitePath(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "sqlite" {
		return "", fmt.Errorf("DATABASE_URL=%q: want sqlite:///path/to/file.db (relative) or sqlite:////abs/path.db", raw)
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
