package main

import (
	"fmt"
	"net/url"
	"strings"
)

// config is the service's whole configuration, read from the environment
// by loadConfig and nowhere else.
type config struct {
	// Addr is ORDERS_ADDR, the listen address (default 127.0.0.1:8090).
	Addr string
	// Secret is ORDERS_AUTH_SECRET, the HS256 key of bearer tokens
	// (required, at least 16 bytes).
	Secret []byte
	// SQLitePath comes from ORDERS_DATABASE_URL (sqlite:///relative.db or
	// sqlite:////abs/path.db); empty means memory stores.
	SQLitePath string
	// RedisURL is ORDERS_REDIS_URL (redis://host:port/db); it selects the
	// Redis stores.
	RedisURL string
}

// minSecretLen is the shortest ORDERS_AUTH_SECRET accepted.
const minSecretLen = 16

// loadConfig reads the configuration through getenv (os.Getenv in main).
// Every error names its variable.
func loadConfig(getenv func(string) string) (config, error) {
	c := config{Addr: strings.TrimSpace(getenv("ORDERS_ADDR")), RedisURL: strings.TrimSpace(getenv("ORDERS_REDIS_URL"))}
	if c.Addr == "" {
		c.Addr = "127.0.0.1:8090"
	}
	var err error
	if c.Secret, err = loadSecret(getenv); err != nil {
		return config{}, err
	}
	if raw := strings.TrimSpace(getenv("ORDERS_DATABASE_URL")); raw != "" {
		if c.SQLitePath, err = sqlitePath(raw); err != nil {
			return config{}, err
		}
	}
	if c.SQLitePath != "" && c.RedisURL != "" {
		return config{}, fmt.Errorf("ORDERS_DATABASE_URL and ORDERS_REDIS_URL are both set: choose one store")
	}
	if c.RedisURL != "" {
		if u, err := url.Parse(c.RedisURL); err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") {
			return config{}, fmt.Errorf("ORDERS_REDIS_URL: want redis://host:port/db")
		}
	}
	return c, nil
}

// loadSecret reads ORDERS_AUTH_SECRET; the token subcommand needs it too.
func loadSecret(getenv func(string) string) ([]byte, error) {
	s := getenv("ORDERS_AUTH_SECRET")
	if len(s) < minSecretLen {
		return nil, fmt.Errorf("ORDERS_AUTH_SECRET: required, at least %d bytes (try: export ORDERS_AUTH_SECRET=$(openssl rand -hex 32))", minSecretLen)
	}
	return []byte(s), nil
}

// sqlitePath turns sqlite:///relative.db or sqlite:////abs/file.db into a
// file path.
func sqlitePath(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "sqlite" || u.Host != "" || u.RawQuery != "" {
		return "", fmt.Errorf("ORDERS_DATABASE_URL: want sqlite:///relative.db or sqlite:////abs/path.db")
	}
	p := strings.TrimPrefix(u.Path, "/")
	if p == "" || strings.HasSuffix(p, "/") {
		return "", fmt.Errorf("ORDERS_DATABASE_URL: no database file named")
	}
	return p, nil
}
