// Package testenv gives the kit's tests their backends: a Redis server
// (real when REDIS_URL is set, in-process miniredis otherwise), SQLite
// databases in t.TempDir() with the kit's migrations applied, and private
// schemas on the Postgres server at POSTGRES_URL (skipping without it),
// bare (Postgres) or with the kit's Postgres migrations (PostgresKit).
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/jmoiron/sqlx"
	"github.com/redis/go-redis/v9"

	"github.com/systembuilderhub/hardening/migrate"
)

// EnvRedisURL names the variable that points the tests at a real server.
const EnvRedisURL = "REDIS_URL"

// RedisServer is one test's view of a Redis server.
type RedisServer struct {
	// Client is connected to the server; it is closed at cleanup.
	Client *redis.Client
	// URL is the server's address as a redis:// URL, for child processes
	// and second clients (for example a second replica).
	URL string
	// Prefix is unique to this test: every key and channel the test
	// creates must start with it. Keys under it are deleted at cleanup.
	Prefix string
	// Mini is the in-process server when REDIS_URL is unset, nil
	// otherwise. Tests that need it (FastForward, fault injection) must
	// handle both cases, never skip the store.
	Mini *miniredis.Miniredis
	// Real reports whether the server is a real redis-server.
	Real bool
}

// NewClient returns another client to the same server, closed at cleanup;
// tests use it to stand for a second replica.
func (s *RedisServer) NewClient(t testing.TB) *redis.Client {
	t.Helper()
	opt, err := redis.ParseURL(s.URL)
	if err != nil {
		t.Fatalf("testenv: parse %s: %v", s.URL, err)
	}
	c := redis.NewClient(opt)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Redis returns a Redis server for t. With REDIS_URL set it connects to
// that server (failing the test if it does not answer) and gives the test a
// unique key prefix, deleting the test's keys afterwards; without it, a
// fresh miniredis per test.
func Redis(t testing.TB) *RedisServer {
	t.Helper()
	prefix := "hardening-test:" + sanitize(t.Name()) + ":" + randHex(4) + ":"
	url := os.Getenv(EnvRedisURL)
	s := &RedisServer{Prefix: prefix}
	if url == "" {
		mr := miniredis.NewMiniRedis()
		if err := mr.Start(); err != nil {
			t.Fatalf("testenv: start miniredis: %v", err)
		}
		t.Cleanup(mr.Close)
		s.Mini = mr
		url = "redis://" + mr.Addr()
	} else {
		s.Real = true
	}
	s.URL = url
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatalf("testenv: %s=%q: %v", EnvRedisURL, url, err)
	}
	s.Client = redis.NewClient(opt)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Client.Ping(ctx).Err(); err != nil {
		t.Fatalf("testenv: redis at %s does not answer: %v", url, err)
	}
	t.Cleanup(func() {
		if s.Real {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			iter := s.Client.Scan(ctx, 0, prefix+"*", 500).Iterator()
			var keys []string
			for iter.Next(ctx) {
				keys = append(keys, iter.Val())
			}
			for len(keys) > 0 {
				n := min(len(keys), 500)
				_ = s.Client.Del(ctx, keys[:n]...).Err()
				keys = keys[n:]
			}
		}
		_ = s.Client.Close()
	})
	return s
}

// SQLite returns a database on a new file in t.TempDir(), opened like the
// kit's stores expect (WAL, busy_timeout, foreign keys) with the kit's
// migrations applied. The database is closed at cleanup.
func SQLite(t testing.TB) *sqlx.DB {
	t.Helper()
	db, _ := SQLiteFile(t)
	return db
}

// SQLiteFile is SQLite and also returns the file's path, for tests that open
// it again from another connection pool or process.
func SQLiteFile(t testing.TB) (*sqlx.DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "test.db")
	db := OpenSQLite(t, path)
	if _, err := migrate.Up(context.Background(), db); err != nil {
		t.Fatalf("testenv: migrate %s: %v", path, err)
	}
	return db, path
}

// OpenSQLite opens the existing (or new) SQLite file at path with the kit's
// settings, closed at cleanup; it applies no migrations.
func OpenSQLite(t testing.TB, path string) *sqlx.DB {
	t.Helper()
	db, err := migrate.OpenSQLite(context.Background(), path, 10*time.Second)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func sanitize(name string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			return r
		}
		return '_'
	}, name)
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
