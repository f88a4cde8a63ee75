package main

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
	"github.com/jmoiron/sqlx"
)

// The hub on PostgreSQL: DATABASE_URL=postgres://… (or postgresql://…)
// keeps the hub's tables and, without REDIS_URL, every feature store in
// that database, through the pgx driver. Replicas on one database share
// everything, as they do on one Redis. The schema is the connection's
// search_path (?search_path=hub in the URL selects another one).

const (
	// pgPingTimeout bounds the check that the database answers at start.
	pgPingTimeout = 5 * time.Second
	// pgMaxOpenConns caps each hub's pool, so that a few replicas stay
	// well below the server's max_connections (100 by default). The flags
	// listener holds one more connection of its own.
	pgMaxOpenConns = 16
)

// onPostgres reports whether the hub's database is PostgreSQL.
func (a *app) onPostgres() bool { return a.db != nil && a.db.DriverName() == "pgx" }

// isPostgresURL reports whether raw names a PostgreSQL database.
func isPostgresURL(raw string) bool {
	return strings.HasPrefix(raw, "postgres://") || strings.HasPrefix(raw, "postgresql://")
}

// checkPostgresURL reports a DATABASE_URL the pgx driver cannot parse;
// the error shows the URL without its password.
func checkPostgresURL(raw string) error {
	if _, err := pgx.ParseConfig(raw); err != nil {
		if _, uerr := url.Parse(raw); uerr != nil {
			// pgconn's message shows the URL, with the password masked.
			return fmt.Errorf("DATABASE_URL: want postgres://user:password@host:5432/dbname?sslmode=…: %w", err)
		}
		return fmt.Errorf("DATABASE_URL=%s: want postgres://user:password@host:5432/dbname?sslmode=…: %w", redactURL(raw), unwrapPGParse(err))
	}
	return nil
}

// unwrapPGParse drops pgconn's own "cannot parse `…`" prefix, which
// repeats the URL.
func unwrapPGParse(err error) error {
	if u := errors.Unwrap(err); u != nil {
		return u
	}
	return err
}

// secretParams are the URL query parameters libpq and pgx read secrets
// from: the password (an alternative to the userinfo's) and the client
// key's passphrase.
var secretParams = []string{"password", "sslpassword"}

// redactURL returns raw with its passwords (the userinfo's and those of
// secretParams) replaced by xxxxx, for errors and logs.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	q := u.Query()
	redacted := false
	for _, p := range secretParams {
		if q.Has(p) {
			q.Set(p, "xxxxx")
			redacted = true
		}
	}
	if redacted {
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

// databaseLabel names the database for the startup log: the SQLite file,
// or the Postgres URL without its password.
func (c config) databaseLabel() string {
	if c.DBPath != "" {
		return c.DBPath
	}
	return redactURL(c.DatabaseURL)
}

// openPostgres opens DATABASE_URL with the pgx driver and checks that the
// server answers; the error names DATABASE_URL (without the password).
func openPostgres(ctx context.Context, raw string) (*sqlx.DB, error) {
	db, err := sqlx.Open("pgx", raw)
	if err != nil {
		return nil, fmt.Errorf("DATABASE_URL=%s: %w", redactURL(raw), err)
	}
	db.SetMaxOpenConns(pgMaxOpenConns)
	db.SetMaxIdleConns(pgMaxOpenConns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	pctx, cancel := context.WithTimeout(ctx, pgPingTimeout)
	defer cancel()
	if err := db.PingContext(pctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("DATABASE_URL=%s: postgres does not answer: %w", redactURL(raw), err)
	}
	return db, nil
}

// isPGUnavailable reports whether err means the Postgres server could not
// be reached or dropped the connection (as opposed to a bad statement): a
// refused or failed dial, a connection closed under the query, a timeout,
// or the server's own "connection exception", "shutting down" and "too
// many connections" errors.
func isPGUnavailable(err error) bool {
	if err == nil {
		return false
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return strings.HasPrefix(pe.Code, "08") || // connection_exception
			pe.Code == "57P01" || pe.Code == "57P02" || pe.Code == "57P03" || // admin/crash shutdown, cannot_connect_now
			pe.Code == "53300" // too_many_connections
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	return errors.As(err, &ce) || errors.As(err, &ne) || pgconn.Timeout(err) || pgconn.SafeToRetry(err) ||
		errors.Is(err, driver.ErrBadConn) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}
