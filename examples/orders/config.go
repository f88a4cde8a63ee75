package main

import (
	"crypto/rand"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/systembuilderhub/hardening/streamauth"
)

// config is the service's whole configuration, read from the environment
// by loadConfig and nowhere else.
type config struct {
	// Addr is ORDERS_ADDR, the listen address (default 127.0.0.1:8090).
	Addr string
	// Secret is ORDERS_AUTH_SECRET, the HS256 key of bearer tokens (at
	// least 16 bytes). Unset on a loopback Addr, it is random and DevSecret
	// is true: serve then logs tokens to try the service with.
	Secret    []byte
	DevSecret bool
	// SQLitePath comes from ORDERS_DATABASE_URL (sqlite:///relative.db or
	// sqlite:////abs/path.db), Redis from ORDERS_REDIS_URL
	// (redis://host:port/db). Neither set means memory stores.
	SQLitePath string
	Redis      *redis.Options
}

// loadConfig reads the configuration through getenv (os.Getenv in main).
// Every error names its variable.
func loadConfig(getenv func(string) string) (c config, err error) {
	c = config{Addr: strings.TrimSpace(getenv("ORDERS_ADDR"))}
	if c.Addr == "" {
		c.Addr = "127.0.0.1:8090"
	}
	switch secret := getenv("ORDERS_AUTH_SECRET"); {
	case secret != "":
		c.Secret, err = checkSecret(secret)
	case !loopback(c.Addr):
		err = fmt.Errorf("ORDERS_AUTH_SECRET: required when ORDERS_ADDR (%s) is not a loopback address", c.Addr)
	default: // development: a secret of this process only
		c.Secret, c.DevSecret = []byte(rand.Text()), true
	}
	if raw := strings.TrimSpace(getenv("ORDERS_DATABASE_URL")); err == nil && raw != "" {
		c.SQLitePath, err = sqlitePath(raw)
	}
	if raw := strings.TrimSpace(getenv("ORDERS_REDIS_URL")); err == nil && raw != "" {
		if c.Redis, err = redis.ParseURL(raw); err != nil { // its text may quote a password
			err = fmt.Errorf("ORDERS_REDIS_URL: want redis://host:port/db")
		} else if c.SQLitePath != "" {
			err = fmt.Errorf("ORDERS_DATABASE_URL and ORDERS_REDIS_URL are both set: choose one store")
		}
	}
	if err != nil {
		return config{}, err
	}
	return c, nil
}

// checkSecret accepts an ORDERS_AUTH_SECRET of at least 16 bytes.
func checkSecret(s string) ([]byte, error) {
	if len(s) < streamauth.MinSecretLen {
		return nil, fmt.Errorf("ORDERS_AUTH_SECRET: at least %d bytes (try: export ORDERS_AUTH_SECRET=$(openssl rand -hex 32))",
			streamauth.MinSecretLen)
	}
	return []byte(s), nil
}

// loopback reports whether addr is host:port with a loopback IP host
// (127.0.0.1, ::1); a name, even localhost, or an empty host is not.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	ip, perr := netip.ParseAddr(host)
	return err == nil && perr == nil && ip.IsLoopback()
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
