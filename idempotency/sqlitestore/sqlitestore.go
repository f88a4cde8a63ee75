// Package sqlitestore keeps idempotency records in SQLite, shared by every
// process that opens the same database file.
//
// The table hardening_idempotency_keys comes from the kit's migrations
// (package migrate); the store never creates it. Open the database with
// migrate.OpenSQLite (WAL, busy_timeout). Each state change is one BEGIN
// IMMEDIATE transaction; a claim is a single INSERT ... ON CONFLICT DO
// UPDATE that only replaces an expired record, so two processes can never
// both claim a key. A first request costs two write transactions (claim,
// complete) and no read; a replay or an in-flight check is one transaction
// that reads the live record after the upsert changed nothing.
package sqlitestore

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
	"github.com/systembuilderhub/hardening/internal/sqlitex"
)

// Store is an idempotency.Store on SQLite. Create it with New.
type Store struct {
	db *sqlx.DB

	// headers caches decoded header columns.
	headers hdrcache.Cache
}

var (
	_ idempotency.Store       = (*Store)(nil)
	_ idempotency.Sweeper     = (*Store)(nil)
	_ idempotency.StatsReader = (*Store)(nil)
)

// New returns a Store on db, which must carry the kit's migrations.
func New(db *sqlx.DB) (*Store, error) {
	if db == nil {
		return nil, errors.New("sqlitestore: nil database")
	}
	return &Store{db: db}, nil
}

// String returns "sqlite", the store's kind.
func (s *Store) String() string { return "sqlite" }

type row struct {
	Fingerprint string
	State       string
	Owner       sql.NullString
	Lease       sql.NullInt64
	StatusCode  sql.NullInt64
	Headers     sql.NullString
	Body        []byte
	BodyStored  bool
	ExpiresAt   int64
}

// selectRow reads one record; scanRow takes its columns in this order.
const selectRow = `SELECT fingerprint, state, owner, lease_expires_at, status_code, headers, body, body_stored, expires_at
FROM hardening_idempotency_keys WHERE scope_key = ?`

// scanRow scans a selectRow result (without sqlx's reflection).
func scanRow(rs *sql.Row, r *row) error {
	return rs.Scan(&r.Fingerprint, &r.State, &r.Owner, &r.Lease, &r.StatusCode, &r.Headers, &r.Body, &r.BodyStored, &r.ExpiresAt)
}

const claimSQL = `INSERT INTO hardening_idempotency_keys
  (scope_key, fingerprint, state, owner, lease_expires_at, created_at, expires_at)
VALUES (?, ?, 'in_flight', ?, ?, ?, ?)
ON CONFLICT (scope_key) DO UPDATE SET
  fingerprint = excluded.fingerprint, state = 'in_flight', owner = excluded.owner,
  lease_expires_at = excluded.lease_expires_at, status_code = NULL, headers = NULL,
  body = NULL, body_stored = 1, created_at = excluded.created_at, expires_at = excluded.expires_at
WHERE hardening_idempotency_keys.expires_at <= excluded.created_at`

// decide turns a live row into a decision; ok is false when the row allows
// a takeover (in flight, same fingerprint, lease expired).
func (s *Store) decide(r row, req idempotency.ClaimRequest) (idempotency.ClaimResult, bool, error) {
	now := req.Now.UnixMilli()
	switch {
	case r.Fingerprint != req.Fingerprint:
		return idempotency.ClaimResult{Status: idempotency.Mismatch}, true, nil
	case r.State == "completed":
		rec, err := s.record(r)
		if err != nil {
			return idempotency.ClaimResult{}, true, err
		}
		return idempotency.ClaimResult{Status: idempotency.Completed, Record: &rec}, true, nil
	case r.Lease.Int64 > now:
		return idempotency.ClaimResult{Status: idempotency.InFlight, LeaseExpiresAt: time.UnixMilli(r.Lease.Int64)}, true, nil
	}
	return idempotency.ClaimResult{}, false, nil
}

func (s *Store) record(r row) (idempotency.Record, error) {
	rec := idempotency.Record{StatusCode: int(r.StatusCode.Int64), BodyOmitted: !r.BodyStored}
	if r.Headers.Valid && r.Headers.String != "" {
		h, err := s.headers.Decode(r.Headers.String)
		if err != nil {
			return rec, fmt.Errorf("sqlitestore: decode headers: %w", err)
		}
		rec.Header = h
	}
	if rec.Header == nil {
		rec.Header = http.Header{}
	}
	if r.BodyStored {
		rec.Body = r.Body
	}
	return rec, nil
}

// Claim implements idempotency.Store in one BEGIN IMMEDIATE transaction,
// without a read before it: the upsert claims a new or expired key at once
// (a first request's only statement); when it changes nothing the key is
// live, and the record is read under the same write lock to answer a
// replay, an in-flight or mismatch refusal, or to take over an expired
// lease.
func (s *Store) Claim(ctx context.Context, req idempotency.ClaimRequest) (idempotency.ClaimResult, error) {
	now := req.Now.UnixMilli()
	var res idempotency.ClaimResult
	err := sqlitex.Immediate(ctx, s.db, func(c *sqlx.Conn) error {
		out, err := c.ExecContext(ctx, claimSQL, req.Key, req.Fingerprint, req.Owner,
			req.Now.Add(req.LockTimeout).UnixMilli(), now, req.Now.Add(req.TTL).UnixMilli())
		if err != nil {
			return err
		}
		if n, err := out.RowsAffected(); err != nil {
			return err
		} else if n == 1 {
			res = idempotency.ClaimResult{Status: idempotency.Claimed}
			return nil
		}
		var r row
		if err := scanRow(c.QueryRowContext(ctx, selectRow, req.Key), &r); err != nil {
			return err
		}
		var done bool
		if res, done, err = s.decide(r, req); done || err != nil {
			return err
		}
		if _, err := c.ExecContext(ctx, `UPDATE hardening_idempotency_keys SET owner = ?, lease_expires_at = ?
WHERE scope_key = ? AND state = 'in_flight'`, req.Owner, req.Now.Add(req.LockTimeout).UnixMilli(), req.Key); err != nil {
			return err
		}
		res = idempotency.ClaimResult{Status: idempotency.Claimed, TookOver: true}
		return nil
	})
	if err != nil {
		return idempotency.ClaimResult{}, fmt.Errorf("sqlitestore: claim: %w", err)
	}
	return res, nil
}

// Complete implements idempotency.Store.
func (s *Store) Complete(ctx context.Context, req idempotency.CompleteRequest) (bool, error) {
	var headers []byte
	if len(req.Record.Header) > 0 {
		var err error
		if headers, err = json.Marshal(req.Record.Header); err != nil {
			return false, fmt.Errorf("sqlitestore: encode headers: %w", err)
		}
	}
	body := req.Record.Body
	if req.Record.BodyOmitted {
		body = nil
	}
	var n int64
	err := sqlitex.Immediate(ctx, s.db, func(c *sqlx.Conn) error {
		out, err := c.ExecContext(ctx, `UPDATE hardening_idempotency_keys SET state = 'completed', owner = NULL,
  lease_expires_at = NULL, status_code = ?, headers = ?, body = ?, body_stored = ?, expires_at = ?
WHERE scope_key = ? AND state = 'in_flight' AND owner = ?`,
			req.Record.StatusCode, string(headers), body, !req.Record.BodyOmitted,
			req.Now.Add(req.TTL).UnixMilli(), req.Key, req.Owner)
		if err != nil {
			return err
		}
		n, err = out.RowsAffected()
		return err
	})
	if err != nil {
		return false, fmt.Errorf("sqlitestore: complete: %w", err)
	}
	return n == 1, nil
}

// Release implements idempotency.Store.
func (s *Store) Release(ctx context.Context, key, owner string) (bool, error) {
	var n int64
	err := sqlitex.Immediate(ctx, s.db, func(c *sqlx.Conn) error {
		out, err := c.ExecContext(ctx, `DELETE FROM hardening_idempotency_keys
WHERE scope_key = ? AND state = 'in_flight' AND owner = ?`, key, owner)
		if err != nil {
			return err
		}
		n, err = out.RowsAffected()
		return err
	})
	if err != nil {
		return false, fmt.Errorf("sqlitestore: release: %w", err)
	}
	return n == 1, nil
}

// Renew implements idempotency.Store: one UPDATE, fenced by the owner.
func (s *Store) Renew(ctx context.Context, req idempotency.RenewRequest) (bool, error) {
	lease := req.Now.Add(req.LockTimeout).UnixMilli()
	var n int64
	err := sqlitex.Immediate(ctx, s.db, func(c *sqlx.Conn) error {
		out, err := c.ExecContext(ctx, `UPDATE hardening_idempotency_keys
SET lease_expires_at = ?, expires_at = max(expires_at, ?)
WHERE scope_key = ? AND state = 'in_flight' AND owner = ? AND expires_at > ?`,
			lease, lease, req.Key, req.Owner, req.Now.UnixMilli())
		if err != nil {
			return err
		}
		n, err = out.RowsAffected()
		return err
	})
	if err != nil {
		return false, fmt.Errorf("sqlitestore: renew: %w", err)
	}
	return n == 1, nil
}

// Sweep implements idempotency.Sweeper: one short transaction deleting at
// most limit expired records.
func (s *Store) Sweep(ctx context.Context, now time.Time, limit int) (int, error) {
	var n int64
	err := sqlitex.Immediate(ctx, s.db, func(c *sqlx.Conn) error {
		out, err := c.ExecContext(ctx, `DELETE FROM hardening_idempotency_keys WHERE rowid IN
  (SELECT rowid FROM hardening_idempotency_keys WHERE expires_at <= ? LIMIT ?)`, now.UnixMilli(), limit)
		if err != nil {
			return err
		}
		n, err = out.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sqlitestore: sweep: %w", err)
	}
	return int(n), nil
}

// Stats implements idempotency.StatsReader.
func (s *Store) Stats(ctx context.Context, now time.Time) (idempotency.Stats, error) {
	var st idempotency.Stats
	ms := now.UnixMilli()
	err := s.db.QueryRowxContext(ctx, `SELECT count(*),
  coalesce(sum(state = 'in_flight' AND lease_expires_at > ?), 0)
FROM hardening_idempotency_keys WHERE expires_at > ?`, ms, ms).Scan(&st.Keys, &st.InFlight)
	if err != nil {
		return st, fmt.Errorf("sqlitestore: stats: %w", err)
	}
	return st, nil
}
