package main

// The postgres row: the hub's middleware chain built in-process (as for
// memory) on the kit's Postgres stores, in a private schema of the server
// that -postgres names. The schema is created for the run, migrated with
// the kit's migrations and dropped at the end, so the load test never
// reads or writes anything else on that server.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
	"github.com/jmoiron/sqlx"

	flagspg "github.com/systembuilderhub/hardening/flags/postgresstore"
	idempg "github.com/systembuilderhub/hardening/idempotency/postgresstore"
	"github.com/systembuilderhub/hardening/migrate"
	previewpg "github.com/systembuilderhub/hardening/previewsec/postgresstore"
	tenancypg "github.com/systembuilderhub/hardening/tenancy/postgresstore"
)

// postgresURLEnv hands the chain child its schema's URL.
const postgresURLEnv = "LOADTEST_POSTGRES_URL"

// pgPoolSize caps the chain's pool, and is kept idle too: the default of
// two idle connections would make the load reconnect all the time.
const pgPoolSize = 16

// pgTimeout bounds the schema's setup and teardown.
const pgTimeout = time.Minute

// pgSchema is the run's private schema on the server at -postgres.
type pgSchema struct {
	admin *sqlx.DB
	// Name is loadtest_ and 8 hex digits.
	Name string
	// URL is -postgres with search_path set to Name: the chain's
	// connections use only the schema.
	URL string
}

// createPGSchema creates and migrates a fresh schema on the server at
// adminURL; drop removes it with everything in it.
func createPGSchema(ctx context.Context, adminURL string) (*pgSchema, error) {
	u, err := url.Parse(adminURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return nil, errors.New("-postgres: want a URL postgres://user@host:port/db?sslmode=…")
	}
	shown := u.Redacted()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	s := &pgSchema{Name: "loadtest_" + hex.EncodeToString(b)}
	q := u.Query()
	q.Set("search_path", s.Name)
	u.RawQuery = q.Encode()
	s.URL = u.String()
	if s.admin, err = sqlx.Open("pgx", adminURL); err != nil {
		return nil, fmt.Errorf("-postgres: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, pgTimeout)
	defer cancel()
	if _, err := s.admin.ExecContext(ctx, `CREATE SCHEMA "`+s.Name+`"`); err != nil {
		_ = s.admin.Close()
		return nil, fmt.Errorf("-postgres %s: create schema: %w", shown, err)
	}
	db, err := sqlx.Open("pgx", s.URL)
	if err == nil {
		_, err = migrate.Up(ctx, db)
		_ = db.Close()
	}
	if err != nil {
		return nil, errors.Join(fmt.Errorf("-postgres: migrate schema %s: %w", s.Name, err), s.drop())
	}
	return s, nil
}

// drop removes the schema and everything in it, and closes the admin pool.
func (s *pgSchema) drop() error {
	ctx, cancel := context.WithTimeout(context.Background(), pgTimeout)
	defer cancel()
	_, err := s.admin.ExecContext(ctx, `DROP SCHEMA "`+s.Name+`" CASCADE`)
	if err != nil {
		err = fmt.Errorf("-postgres: drop schema %s: %w", s.Name, err)
	}
	return errors.Join(err, s.admin.Close())
}

// records counts the idempotency records the chain left in the schema
// (the proof that the row ran on Postgres).
func (s *pgSchema) records(ctx context.Context) (int, error) {
	var n int
	err := s.admin.QueryRowContext(ctx, `SELECT count(*) FROM "`+s.Name+`".hardening_idempotency_keys`).Scan(&n)
	return n, err
}

// postgresStores opens a pool on the schema at schemaURL and builds the
// kit's Postgres stores on it; close closes the pool.
func postgresStores(schemaURL string) (chainStores, error) {
	db, err := sqlx.Open("pgx", schemaURL)
	if err != nil {
		return chainStores{}, err
	}
	db.SetMaxOpenConns(pgPoolSize)
	db.SetMaxIdleConns(pgPoolSize)
	st := chainStores{close: db.Close}
	var keys *previewpg.Store
	if st.idem, err = idempg.New(db); err == nil {
		if st.quota, err = tenancypg.New(db); err == nil {
			if keys, err = previewpg.New(db); err == nil {
				st.keys, st.revs = keys, keys
				st.flags, err = flagspg.New(db)
			}
		}
	}
	if err != nil {
		_ = db.Close()
		return chainStores{}, fmt.Errorf("postgres stores: %w", err)
	}
	return st, nil
}

// pgRTT is the median of a bare single-row round trip on the schema: an
// autocommit upsert of one row in a table of its own.
func pgRTT(ctx context.Context, schemaURL string) (time.Duration, error) {
	db, err := sqlx.Open("pgx", schemaURL)
	if err != nil {
		return 0, err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `CREATE TABLE loadtest_rtt (k integer PRIMARY KEY, v integer)`); err != nil {
		return 0, fmt.Errorf("-postgres: %w", err)
	}
	const n = 200
	lat := make([]time.Duration, 0, n)
	for i := range n {
		t0 := time.Now()
		if _, err := db.ExecContext(ctx, `INSERT INTO loadtest_rtt (k, v) VALUES (1, $1) ON CONFLICT (k) DO UPDATE SET v = excluded.v`, i); err != nil {
			return 0, fmt.Errorf("-postgres: %w", err)
		}
		lat = append(lat, time.Since(t0))
	}
	slices.Sort(lat)
	return lat[n/2], nil
}
