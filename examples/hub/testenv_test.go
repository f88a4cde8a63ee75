package main

import (
	"context"
	"crypto/rand"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/jmoiron/sqlx"
	"github.com/redis/go-redis/v9"

	"github.com/systembuilderhub/hardening/migrate"
)

// The test backends, written on public packages only so that this example
// can be copied out of the module.

// testRedisServer is one test's Redis: the server at REDIS_URL when it is
// set, a fresh miniredis otherwise.
type testRedisServer struct {
	Client *redis.Client
	URL    string
	// Prefix is unique to the test; on a real server keys under it are
	// deleted at cleanup.
	Prefix string
	// Mini is the in-process server, nil when REDIS_URL is set.
	Mini *miniredis.Miniredis
}

// testRedis returns t's Redis server, failing t if it does not answer.
func testRedis(t testing.TB) *testRedisServer {
	t.Helper()
	s := &testRedisServer{URL: os.Getenv("REDIS_URL"), Prefix: "hardening-test:" + rand.Text() + ":"}
	if s.URL == "" {
		s.Mini = miniredis.RunT(t)
		s.URL = "redis://" + s.Mini.Addr()
	}
	opt, err := redis.ParseURL(s.URL)
	if err != nil {
		t.Fatalf("REDIS_URL=%q: %v", s.URL, err)
	}
	s.Client = redis.NewClient(opt)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Client.Ping(ctx).Err(); err != nil {
		t.Fatalf("redis at %s does not answer: %v", s.URL, err)
	}
	t.Cleanup(func() {
		defer s.Client.Close()
		if s.Mini != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		pipe := s.Client.Pipeline()
		iter := s.Client.Scan(ctx, 0, s.Prefix+"*", 500).Iterator()
		for iter.Next(ctx) {
			pipe.Del(ctx, iter.Val())
		}
		_, _ = pipe.Exec(ctx)
	})
	return s
}

// openTestDB opens the SQLite file at path as the hub does, closed at
// cleanup; it applies no migrations.
func openTestDB(t testing.TB, path string) *sqlx.DB {
	t.Helper()
	db, err := migrate.OpenSQLite(context.Background(), path, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// testPostgresDB is one test's private schema on the server at
// POSTGRES_URL.
type testPostgresDB struct {
	// DB is a pool on the schema (search_path), closed at cleanup.
	DB *sqlx.DB
	// URL reaches the schema (search_path in its query): the hub's
	// DATABASE_URL.
	URL string
	// Schema is unique to the test and dropped, with everything in it, at
	// cleanup.
	Schema string
}

// testPostgres gives t a fresh, empty schema on the server at
// POSTGRES_URL, skipping t with a message naming the variable when it is
// unset. Nothing is migrated: the hub applies its migrations at start.
func testPostgres(t testing.TB) *testPostgresDB {
	t.Helper()
	admin := os.Getenv("POSTGRES_URL")
	if admin == "" {
		t.Skip("the hub's Postgres tests need a server: set POSTGRES_URL (for example postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable)")
	}
	schema := "hub_test_" + strings.ToLower(rand.Text()[:12])
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	adm, err := sqlx.Open("pgx", admin)
	if err != nil {
		t.Fatalf("POSTGRES_URL=%q: %v", admin, err)
	}
	if _, err := adm.ExecContext(ctx, `CREATE SCHEMA `+schema); err != nil {
		_ = adm.Close()
		t.Fatalf("postgres at POSTGRES_URL: create schema: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = adm.ExecContext(ctx, `DROP SCHEMA `+schema+` CASCADE`)
		_ = adm.Close()
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("POSTGRES_URL: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	p := &testPostgresDB{URL: u.String(), Schema: schema}
	if p.DB, err = sqlx.Open("pgx", p.URL); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.DB.Close() })
	return p
}

// withPostgres points a test app's config at the test's Postgres schema.
func withPostgres(p *testPostgresDB) func(*config) {
	return func(c *config) { c.DatabaseURL, c.DBPath = p.URL, "" }
}
