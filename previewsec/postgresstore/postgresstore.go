// Package postgresstore is the PostgreSQL previewsec.KeyStore and
// previewsec.RevocationStore, for replicas that keep their durable state in
// one Postgres database: the daily key ring they all sign with and the
// revocation list they all honour.
//
// The tables (hardening_preview_keys, hardening_preview_revocations) and
// the function hardening_preview_create_key come from the kit's migrations
// (package migrate, migrate/sql/postgres/0003_previewsec.sql); the store
// never creates them, and New reports a database without them
// (ErrNotMigrated). Statements name them unqualified, so they resolve
// through the connection's search_path, as migrate's did when it created
// them. Open the database with the pgx driver and pass the handle:
//
//	db, err := sqlx.Open("pgx", "postgres://app@db/app") // import _ "github.com/jackc/pgx/v5/stdlib"
//	store, err := postgresstore.New(db)
//
// A *sql.DB the application already has becomes a *sqlx.DB with
// sqlx.NewDb(sqlDB, "pgx"). The store does not import a driver.
//
// # Round trips
//
// Every method is one SQL statement, so one round trip to the server (the
// pgx driver prepares each statement once per connection and caches it):
//
//	method                     statement                                         round trips
//	New                        SELECT to_regclass(…) (the schema check)          1
//	CreateKey                  SELECT … FROM hardening_preview_create_key(…)     1
//	Keys                       SELECT … WHERE expires_at > $1 ORDER BY period    1
//	DeleteExpiredKeys          DELETE … WHERE expires_at <= $1                   1
//	Revoke                     INSERT … ON CONFLICT (kind, value) DO UPDATE      1
//	Revocations                SELECT … WHERE expires_at > $1                    1
//	DeleteExpiredRevocations   DELETE … WHERE expires_at <= $1                   1
//
// CreateKey is the one decision that needs more than a statement: an
// atomic create-if-absent on the period that returns the winner's key to
// every replica. A single INSERT … ON CONFLICT DO NOTHING followed, in the
// same statement, by a SELECT cannot see a key committed by a concurrent
// replica (one snapshot per statement), so the PL/pgSQL function does the
// INSERT and then the SELECT with a fresh snapshot, in one call. Two
// replicas (or processes) rotating at the same instant both get the one
// stored key. Under SERIALIZABLE or REPEATABLE READ defaults a concurrent
// create can fail with a serialization failure; CreateKey then calls the
// function again (at most twice more), which is the only case where it
// makes more than one round trip.
//
// Times are Unix milliseconds (bigint) taken from the arguments, which come
// from the key ring's or revocation list's clock, never the server's
// now(). Secrets are stored as given (bytea), as on SQLite: protect the
// database and its backups as you protect the signing keys. Neither table
// holds tenant data, so no row-level security applies.
package postgresstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/systembuilderhub/hardening/previewsec"
)

// Store keeps keys in hardening_preview_keys and revocations in
// hardening_preview_revocations.
type Store struct {
	db *sqlx.DB
}

var (
	_ previewsec.KeyStore        = (*Store)(nil)
	_ previewsec.RevocationStore = (*Store)(nil)
)

// ErrNotMigrated is returned (wrapped) by New when the database lacks the
// tables or the function of migrate/sql/postgres/0003_previewsec.sql: run
// the kit's Postgres migrations (package migrate) first.
var ErrNotMigrated = errors.New("previewsec/postgresstore: database not migrated (0003_previewsec missing)")

// CheckTimeout bounds the schema check New makes.
const CheckTimeout = 5 * time.Second

// schemaCheck reports whether the objects of 0003_previewsec exist in the
// connection's search_path.
const schemaCheck = `SELECT to_regclass('hardening_preview_keys') IS NOT NULL
	AND to_regclass('hardening_preview_revocations') IS NOT NULL
	AND to_regprocedure('hardening_preview_create_key(text, bigint, bytea, bigint, bigint)') IS NOT NULL`

// New returns a store on db, a Postgres database migrated by the kit's
// migrations (migrate, Postgres dialect). It checks the schema with one
// query bounded by CheckTimeout: a database without it is ErrNotMigrated,
// one that does not answer is an error too.
func New(db *sqlx.DB) (*Store, error) {
	if db == nil {
		return nil, errors.New("previewsec/postgresstore: nil db")
	}
	ctx, cancel := context.WithTimeout(context.Background(), CheckTimeout)
	defer cancel()
	var ok bool
	if err := db.GetContext(ctx, &ok, schemaCheck); err != nil {
		return nil, fmt.Errorf("previewsec/postgresstore: check schema: %w", err)
	}
	if !ok {
		return nil, ErrNotMigrated
	}
	return &Store{db: db}, nil
}

// ms is t in Unix milliseconds, the unit of every time column.
func ms(t time.Time) int64 { return t.UnixMilli() }
