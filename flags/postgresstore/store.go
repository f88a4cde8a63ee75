// Package postgresstore is the Postgres flags.Store. The schema comes from
// the kit's migrate package (migrate/sql/postgres/0004_flags.sql:
// hardening_flags, hardening_flag_audit, hardening_flags_version and the
// functions hardening_flags_toggle and hardening_flags_channel); the store
// never creates tables.
//
// The store takes a *sqlx.DB the application opened with the pgx driver
// (import _ "github.com/jackc/pgx/v5/stdlib", then sqlx.Open("pgx", url));
// a *sql.DB becomes one with sqlx.NewDb(db, "pgx"). The package does not
// import the driver itself.
//
// Every toggle is one call of hardening_flags_toggle, so one statement and
// one transaction: it locks and bumps the one-row version table (which
// queues concurrent toggles, so each reads the old value the previous one
// committed), writes the value, appends the audit record (who, tenant,
// when, old, new, reason) and NOTIFYs the flag's name on the schema's
// channel. Replicas on the same schema poll the version with one
// primary-key SELECT. Toggles rely on READ COMMITTED, Postgres's default:
// with REPEATABLE READ or SERIALIZABLE as the database's default isolation,
// concurrent toggles fail with serialization errors (SQLSTATE 40001)
// instead of queueing.
//
// # Change notification
//
// The store implements flags.Notifier with LISTEN on a dedicated
// connection, so every replica's flags.Client reloads as soon as a toggle
// commits, whichever replica made it. That connection is not taken from
// the pool (a listener would hold a pool slot for good): Subscribe borrows
// a pooled connection for a moment, copies its pgx configuration (host,
// credentials, TLS, runtime parameters such as search_path) and opens its
// own *pgx.Conn with it, closed when Subscribe returns (the client cancels
// it on Close). Hooks of the pool's connector (stdlib.OptionAfterConnect)
// are not replayed on it: put what it needs, such as search_path, in the
// URL. The channel is "hardening_flags:" followed by the name of
// the schema holding the tables (current_schema() when search_path names it
// first; an md5 for names over 47 bytes), so schemas on one database do not
// hear each other. While waiting, the listener checks its connection every
// 30 s; when it breaks Subscribe returns the error and the client, polling
// meanwhile, subscribes again.
//
// When the database handle does not come from the pgx driver (another
// database/sql driver or a wrapping connector), no pgx configuration can
// be copied: Subscribe then polls the version every WithPollInterval
// (default 500 ms) and calls back on each change, so notification still
// takes at most that interval.
//
// # Round trips
//
// Per call, once pgx has cached the statement on the connection (the first
// use of a statement on a connection also prepares it):
//
//	Toggle     1  SELECT of hardening_flags_toggle(...)
//	Version    1  primary-key SELECT
//	Load       1  one SELECT joining the version row and the values (one snapshot)
//	Audit      1  one indexed SELECT, filters and cursor in SQL
//	Subscribe  a new connection, then 2 (the channel's name, LISTEN); 0 per
//	           notification; 1 ping after each 30 s without one
//
// Flag reads cost none: flags.Client evaluates from its in-memory snapshot
// and reaches the store only to refresh it.
package postgresstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/systembuilderhub/hardening/flags"
	"github.com/systembuilderhub/hardening/flags/internal/sqlaudit"
)

// DefaultPollInterval is how often Subscribe polls the version when it
// cannot LISTEN (a database handle without the pgx driver).
const DefaultPollInterval = 500 * time.Millisecond

// Store is the Postgres flags.Store; it also implements flags.Notifier.
type Store struct {
	db     *sqlx.DB
	poll   time.Duration
	health time.Duration
}

var (
	_ flags.Store    = (*Store)(nil)
	_ flags.Notifier = (*Store)(nil)
)

type config struct{ poll, health time.Duration }

// Option configures New, the package's only constructor: an interface with
// an unexported method, as every option of the kit. A nil option is
// ignored; New reports invalid values.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// WithPollInterval sets how often Subscribe polls the version when it
// cannot LISTEN (default DefaultPollInterval); it must be positive and at
// most one second, the kit's notification bound.
func WithPollInterval(d time.Duration) Option { return optionFunc(func(c *config) { c.poll = d }) }

// checkTimeout bounds New's schema check.
const checkTimeout = 10 * time.Second

// New returns a store on db, which must carry the kit's Postgres
// migrations (migrate, 0004_flags). New checks that they are there with
// one query and says so when they are not.
func New(db *sqlx.DB, opts ...Option) (*Store, error) {
	if db == nil {
		return nil, errors.New("flags/postgresstore: nil db")
	}
	cfg := config{poll: DefaultPollInterval, health: healthInterval}
	for _, o := range opts {
		if o != nil {
			o.apply(&cfg)
		}
	}
	if cfg.poll <= 0 || cfg.poll > time.Second {
		return nil, fmt.Errorf("flags/postgresstore: poll interval %v: want 0 < d <= 1s", cfg.poll)
	}
	ctx, cancel := context.WithTimeout(context.Background(), checkTimeout)
	defer cancel()
	var ok bool
	err := db.QueryRowContext(ctx, `SELECT to_regclass('hardening_flag_audit') IS NOT NULL
		AND to_regprocedure('hardening_flags_toggle(text, text, boolean, text, bigint, text)') IS NOT NULL`).Scan(&ok)
	if err != nil {
		return nil, fmt.Errorf("flags/postgresstore: check schema: %w", err)
	}
	if !ok {
		return nil, errors.New("flags/postgresstore: the database lacks the flag tables: apply the kit's Postgres migrations (migrate, 0004_flags) first")
	}
	return &Store{db: db, poll: cfg.poll, health: cfg.health}, nil
}

// Version implements flags.Store: one primary-key lookup.
func (s *Store) Version(ctx context.Context) (int64, error) {
	var v int64
	err := s.db.QueryRowContext(ctx, `SELECT version FROM hardening_flags_version WHERE id = 1`).Scan(&v)
	if err != nil {
		return 0, fmt.Errorf("flags/postgresstore: version: %w", err)
	}
	return v, nil
}

// Load implements flags.Store: one statement, so version and values come
// from one snapshot.
func (s *Store) Load(ctx context.Context) (flags.State, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT v.version, f.name, f.tenant_id, f.value
		FROM hardening_flags_version v LEFT JOIN hardening_flags f ON true WHERE v.id = 1`)
	if err != nil {
		return flags.State{}, fmt.Errorf("flags/postgresstore: load: %w", err)
	}
	defer rows.Close()
	var st flags.State
	found := false
	for rows.Next() {
		var name, tenant sql.NullString
		var val sql.NullBool
		if err := rows.Scan(&st.Version, &name, &tenant, &val); err != nil {
			return flags.State{}, fmt.Errorf("flags/postgresstore: load: %w", err)
		}
		found = true
		if name.Valid {
			st.Values = append(st.Values, flags.Value{Flag: name.String, TenantID: tenant.String, Value: val.Bool})
		}
	}
	if err := rows.Err(); err != nil {
		return flags.State{}, fmt.Errorf("flags/postgresstore: load: %w", err)
	}
	if !found {
		return flags.State{}, errors.New("flags/postgresstore: load: hardening_flags_version has no row")
	}
	return st, nil
}

// Toggle implements flags.Store with one call of hardening_flags_toggle.
func (s *Store) Toggle(ctx context.Context, req flags.ToggleRequest) (flags.Record, error) {
	rec := flags.Record{
		Flag:      req.Flag,
		TenantID:  req.TenantID,
		NewValue:  req.Value,
		ChangedBy: req.By,
		ChangedAt: time.UnixMilli(req.At.UnixMilli()).UTC(),
		Reason:    req.Reason,
	}
	var old sql.NullBool
	var ver int64
	err := s.db.QueryRowContext(ctx, `SELECT o_id, o_old, o_version FROM hardening_flags_toggle($1, $2, $3, $4, $5, $6)`,
		req.Flag, req.TenantID, req.Value, req.By, rec.ChangedAt.UnixMilli(), req.Reason).Scan(&rec.ID, &old, &ver)
	if err != nil {
		return flags.Record{}, fmt.Errorf("flags/postgresstore: toggle: %w", err)
	}
	if old.Valid {
		v := old.Bool
		rec.OldValue = &v
	}
	return rec, nil
}

// Audit implements flags.Store: the filters and the cursor are one indexed
// query, newest first.
func (s *Store) Audit(ctx context.Context, q flags.AuditQuery) (flags.AuditPage, error) {
	return sqlaudit.Page(ctx, s.db, "flags/postgresstore", q)
}
