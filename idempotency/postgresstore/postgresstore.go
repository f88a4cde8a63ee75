// Package postgresstore keeps idempotency records in PostgreSQL, shared by
// every replica that uses the same database.
//
// The table hardening_idempotency_keys and the function
// hardening_idempotency_claim come from the kit's migrations (package
// migrate, migrate/sql/postgres/0001_idempotency.sql); the store never
// creates them, and New reports a database that lacks them. The store takes
// the *sqlx.DB the application opened with the pgx driver
// (sqlx.Open("pgx", url) after importing github.com/jackc/pgx/v5/stdlib); a
// *sql.DB becomes one with sqlx.NewDb(db, "pgx"). The store needs the
// default READ COMMITTED isolation on its connections.
//
// Every decision is one statement, so one round trip:
//
//	method    round trips  statement
//	Claim     1            SELECT hardening_idempotency_claim(...): a plain SELECT answers a live
//	                       record (replay, in flight, mismatch) without writing; a new or expired
//	                       key is claimed by INSERT ... ON CONFLICT DO UPDATE WHERE expired, and a
//	                       lapsed lease is taken over on the row that INSERT locked
//	Complete  1            UPDATE ... WHERE owner = $owner AND state = 'in_flight'
//	Renew     1            UPDATE ... WHERE owner = $owner AND state = 'in_flight' AND live
//	Release   1            DELETE ... WHERE owner = $owner AND state = 'in_flight'
//	Sweep     1            DELETE ... WHERE scope_key IN (SELECT ... LIMIT n FOR UPDATE SKIP LOCKED)
//	Stats     1            SELECT count(*) ...
//
// A first request therefore costs two round trips (Claim, Complete) and a
// replay one, plus one Renew per renewal interval while a slow handler
// runs. Each statement runs on its own (autocommit); a claim never reads
// and then writes across statements. Times are Unix milliseconds from the
// middleware's clock, passed as parameters (never now() in SQL), so every
// replica and every test clock decides alike.
package postgresstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/systembuilderhub/hardening/idempotency"
	"github.com/systembuilderhub/hardening/idempotency/internal/hdrcache"
)

// ErrNotMigrated is returned (wrapped) by New when the database lacks the
// kit's idempotency schema: run the kit's Postgres migrations first.
var ErrNotMigrated = errors.New("postgresstore: hardening_idempotency_keys or hardening_idempotency_claim missing: apply the kit's migrations (migrate, postgres 0001_idempotency.sql) first")

// checkTimeout bounds the schema check New makes.
const checkTimeout = 10 * time.Second

// Store is an idempotency.Store on PostgreSQL. Create it with New.
type Store struct {
	db *sqlx.DB

	// headers decodes the header column of replays.
	headers hdrcache.Cache
}

var (
	_ idempotency.Store       = (*Store)(nil)
	_ idempotency.Sweeper     = (*Store)(nil)
	_ idempotency.StatsReader = (*Store)(nil)
)

// New returns a Store on db, which must carry the kit's Postgres
// migrations. It checks them with one query (bounded by 10 s) and returns
// an error wrapping ErrNotMigrated when they are missing, or the driver's
// error when the database does not answer.
func New(db *sqlx.DB) (*Store, error) {
	if db == nil {
		return nil, errors.New("postgresstore: nil database")
	}
	ctx, cancel := context.WithTimeout(context.Background(), checkTimeout)
	defer cancel()
	var ok bool
	err := db.QueryRowContext(ctx, `SELECT to_regclass('hardening_idempotency_keys') IS NOT NULL
  AND to_regprocedure('hardening_idempotency_claim(text, text, text, bigint, bigint, bigint)') IS NOT NULL`).Scan(&ok)
	if err != nil {
		return nil, fmt.Errorf("postgresstore: check schema: %w", err)
	}
	if !ok {
		return nil, fmt.Errorf("%w (search_path of the connection: see current_schemas)", ErrNotMigrated)
	}
	return &Store{db: db}, nil
}

// String returns "postgres", the store's kind.
func (s *Store) String() string { return "postgres" }

const claimSQL = `SELECT outcome, lease_until, status, hdr, payload, stored
FROM hardening_idempotency_claim($1, $2, $3, $4, $5, $6)`

// Claim implements idempotency.Store in one round trip (see the package
// doc).
func (s *Store) Claim(ctx context.Context, req idempotency.ClaimRequest) (idempotency.ClaimResult, error) {
	var (
		outcome string
		lease   sql.NullInt64
		status  sql.NullInt64
		hdr     sql.NullString
		body    []byte
		stored  sql.NullBool
	)
	err := s.db.QueryRowContext(ctx, claimSQL, req.Key, req.Fingerprint, req.Owner, req.Now.UnixMilli(),
		req.Now.Add(req.LockTimeout).UnixMilli(), req.Now.Add(req.TTL).UnixMilli()).
		Scan(&outcome, &lease, &status, &hdr, &body, &stored)
	if err != nil {
		return idempotency.ClaimResult{}, fmt.Errorf("postgresstore: claim: %w", err)
	}
	switch outcome {
	case "claimed":
		return idempotency.ClaimResult{Status: idempotency.Claimed}, nil
	case "took_over":
		return idempotency.ClaimResult{Status: idempotency.Claimed, TookOver: true}, nil
	case "mismatch":
		return idempotency.ClaimResult{Status: idempotency.Mismatch}, nil
	case "in_flight":
		return idempotency.ClaimResult{Status: idempotency.InFlight, LeaseExpiresAt: time.UnixMilli(lease.Int64)}, nil
	case "completed":
		rec := idempotency.Record{StatusCode: int(status.Int64), BodyOmitted: !stored.Bool, Header: http.Header{}}
		if hdr.String != "" {
			h, err := s.headers.Decode(hdr.String)
			if err != nil {
				return idempotency.ClaimResult{}, fmt.Errorf("postgresstore: decode headers: %w", err)
			}
			rec.Header = h
		}
		if stored.Bool {
			rec.Body = body
		}
		return idempotency.ClaimResult{Status: idempotency.Completed, Record: &rec}, nil
	}
	return idempotency.ClaimResult{}, fmt.Errorf("postgresstore: claim: unexpected outcome %q", outcome)
}

// exec runs one statement and reports whether it changed exactly one row.
func (s *Store) exec(ctx context.Context, op, query string, args ...any) (bool, error) {
	out, err := s.db.ExecContext(ctx, query, args...)
	if err != nil {
		return false, fmt.Errorf("postgresstore: %s: %w", op, err)
	}
	n, err := out.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("postgresstore: %s: %w", op, err)
	}
	return n == 1, nil
}

// Complete implements idempotency.Store in one round trip, fenced by the
// owner token.
func (s *Store) Complete(ctx context.Context, req idempotency.CompleteRequest) (bool, error) {
	var headers []byte
	if len(req.Record.Header) > 0 {
		var err error
		if headers, err = json.Marshal(req.Record.Header); err != nil {
			return false, fmt.Errorf("postgresstore: encode headers: %w", err)
		}
	}
	body := req.Record.Body
	if req.Record.BodyOmitted {
		body = nil
	}
	return s.exec(ctx, "complete", `UPDATE hardening_idempotency_keys SET state = 'completed', owner = NULL,
  lease_expires_at = NULL, status_code = $1, headers = $2, body = $3, body_stored = $4, expires_at = $5
WHERE scope_key = $6 AND state = 'in_flight' AND owner = $7`,
		req.Record.StatusCode, string(headers), body, !req.Record.BodyOmitted,
		req.Now.Add(req.TTL).UnixMilli(), req.Key, req.Owner)
}

// Release implements idempotency.Store in one round trip.
func (s *Store) Release(ctx context.Context, key, owner string) (bool, error) {
	return s.exec(ctx, "release", `DELETE FROM hardening_idempotency_keys
WHERE scope_key = $1 AND state = 'in_flight' AND owner = $2`, key, owner)
}

// Renew implements idempotency.Store in one round trip, fenced by the
// owner token.
func (s *Store) Renew(ctx context.Context, req idempotency.RenewRequest) (bool, error) {
	lease := req.Now.Add(req.LockTimeout).UnixMilli()
	return s.exec(ctx, "renew", `UPDATE hardening_idempotency_keys
SET lease_expires_at = $1, expires_at = greatest(expires_at, $1)
WHERE scope_key = $2 AND state = 'in_flight' AND owner = $3 AND expires_at > $4`,
		lease, req.Key, req.Owner, req.Now.UnixMilli())
}

// Sweep implements idempotency.Sweeper: one DELETE of at most limit
// expired records, skipping rows another statement holds.
func (s *Store) Sweep(ctx context.Context, now time.Time, limit int) (int, error) {
	ms := now.UnixMilli()
	out, err := s.db.ExecContext(ctx, `DELETE FROM hardening_idempotency_keys WHERE expires_at <= $1 AND scope_key IN
  (SELECT scope_key FROM hardening_idempotency_keys WHERE expires_at <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED)`, ms, limit)
	if err != nil {
		return 0, fmt.Errorf("postgresstore: sweep: %w", err)
	}
	n, err := out.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("postgresstore: sweep: %w", err)
	}
	return int(n), nil
}

// Stats implements idempotency.StatsReader in one round trip.
func (s *Store) Stats(ctx context.Context, now time.Time) (idempotency.Stats, error) {
	var st idempotency.Stats
	ms := now.UnixMilli()
	err := s.db.QueryRowContext(ctx, `SELECT count(*),
  count(*) FILTER (WHERE state = 'in_flight' AND lease_expires_at > $1)
FROM hardening_idempotency_keys WHERE expires_at > $1`, ms).Scan(&st.Keys, &st.InFlight)
	if err != nil {
		return st, fmt.Errorf("postgresstore: stats: %w", err)
	}
	return st, nil
}
