package testenv

import (
	"context"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
	"github.com/jmoiron/sqlx"

	"github.com/systembuilderhub/hardening/migrate"
)

// EnvPostgresURL names the variable that points the Postgres tests at a
// server. There is no in-process Postgres: without it those tests skip,
// saying so. The URL's role must be able to create schemas and roles
// (.ci/run gives the cluster's superuser).
const EnvPostgresURL = "POSTGRES_URL"

// PostgresDB is one test's private schema on the server at POSTGRES_URL.
type PostgresDB struct {
	// DB is connected with search_path set to Schema; closed at cleanup.
	DB *sqlx.DB
	// URL reaches the same schema (search_path in its query), for child
	// processes and second connection pools standing for other replicas.
	URL string
	// Schema is unique to this test and dropped, with everything in it, at
	// cleanup.
	Schema string
	// AdminURL is POSTGRES_URL itself, without the schema.
	AdminURL string
}

// Open returns another pool on the test's schema, closed at cleanup.
func (p *PostgresDB) Open(t testing.TB) *sqlx.DB {
	t.Helper()
	db, err := sqlx.Open("pgx", p.URL)
	if err != nil {
		t.Fatalf("testenv: open %s: %v", p.URL, err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// PostgresURL returns POSTGRES_URL, skipping t with a message naming the
// variable when it is unset.
func PostgresURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(EnvPostgresURL)
	if u == "" {
		t.Skipf("Postgres tests need a server: set %s (for example postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable); .ci/run starts one", EnvPostgresURL)
	}
	return u
}

// Postgres gives t a fresh, empty schema on the server at POSTGRES_URL
// (skipping t when it is unset) and a pool whose connections use it. No
// migrations are applied: tests run migrate themselves. The schema is
// dropped at cleanup.
func Postgres(t testing.TB) *PostgresDB {
	t.Helper()
	admin := PostgresURL(t)
	schema := "t_" + strings.ToLower(sanitize(t.Name()))
	if len(schema) > 40 {
		schema = schema[:40]
	}
	schema += "_" + randHex(4)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	adm, err := sqlx.Open("pgx", admin)
	if err != nil {
		t.Fatalf("testenv: %s=%q: %v", EnvPostgresURL, admin, err)
	}
	if _, err := adm.ExecContext(ctx, `CREATE SCHEMA "`+schema+`"`); err != nil {
		_ = adm.Close()
		t.Fatalf("testenv: postgres at %s: create schema: %v", admin, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = adm.ExecContext(ctx, `DROP SCHEMA "`+schema+`" CASCADE`)
		_ = adm.Close()
	})
	p := &PostgresDB{Schema: schema, AdminURL: admin, URL: withSearchPath(t, admin, schema)}
	p.DB = p.Open(t)
	return p
}

func withSearchPath(t testing.TB, raw, schema string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("testenv: %s: %v", EnvPostgresURL, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// PostgresKit is Postgres with the kit's Postgres migrations applied
// through migrate, as SQLite does for SQLite: the schema every Postgres
// store test starts from. It skips t, like Postgres, when POSTGRES_URL is
// unset, and fails it when the migrations do not apply.
func PostgresKit(t testing.TB) *PostgresDB {
	t.Helper()
	p := Postgres(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := migrate.Up(ctx, p.DB); err != nil {
		t.Fatalf("testenv: migrate schema %s: %v", p.Schema, err)
	}
	return p
}
