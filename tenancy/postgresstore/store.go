// Package postgresstore is a tenancy.Store on PostgreSQL. Every decision
// is one call of a PL/pgSQL function of the kit's migration 0002
// (migrate/sql/postgres/0002_tenancy.sql), so one statement and one round
// trip: the function takes a transaction-level advisory lock on (schema,
// tenant, quota), reads the override and the state, decides and writes,
// all in the statement's own transaction. Replicas sharing one database
// decide consistently: semaphores, rates and budgets are never
// over-granted. The tables come from the kit's migrations (migrate.Up);
// the store never creates them, and New reports a database without them.
//
// # Round trips
//
// One per method, whatever the outcome (after the first use of a pooled
// connection, when pgx prepares the statement once):
//
//	method         statement                                  locks (tenant, quota)
//	TakeRate       SELECT … FROM hardening_quota_take_rate     yes
//	RateUsed       SELECT … FROM hardening_quota_rate_state    no (reads)
//	AcquireSlot    SELECT … FROM hardening_quota_acquire_slot  yes
//	RenewSlot      SELECT … FROM hardening_quota_renew_slot    yes
//	ReleaseSlot    SELECT hardening_quota_release_slot(…)      no (one DELETE)
//	SlotsHeld      SELECT hardening_quota_slots_held(…)        no (reads)
//	Reserve        SELECT … FROM hardening_quota_reserve       yes
//	Settle         SELECT … FROM hardening_quota_settle        yes
//	Cancel         SELECT hardening_quota_cancel(…)            no (one DELETE)
//	BudgetUsage    SELECT … FROM hardening_quota_budget_usage  no (reads)
//	Limits         SELECT … FROM hardening_quota_overrides_of  no (reads)
//	SetLimits      SELECT … FROM hardening_quota_set_limits    yes (tenant's limits)
//	Audit          SELECT … FROM hardening_quota_audit_page    no (reads)
//
// The functions run in the statement's implicit transaction under READ
// COMMITTED (the default; they refuse other isolation levels, where the
// lock would not order the reads), so each of their statements sees what
// the previous holder of the lock committed.
//
// # Row-level security
//
// Every table of the store is tenant-owned and under row-level security
// (the policy of tenancy.RowLevelSecuritySQL; migration 0006 sets its
// current condition, where an empty app.tenant_id is no tenant). Each function scopes its
// own transaction to the request's tenant with
// set_config('app.tenant_id', tenant, true) before touching a table, so
// the store works unchanged under an application role without BYPASSRLS
// (and under one with it). Audit with an empty tenant, the store's only
// cross-tenant read, sets app.cross_tenant for its own statement instead.
//
// # Database handle
//
// New takes the *sqlx.DB the application opened with the pgx driver,
// sqlx.Open("pgx", url) with github.com/jackc/pgx/v5/stdlib imported; a
// *sql.DB becomes one with sqlx.NewDb(db, "pgx"). The store does not
// import a driver. Times are the requests' (the injected clock), never
// the server's now(): leases and reservations in Unix milliseconds, GCRA
// state in Unix microseconds, as in tenancy/sqlitestore.
package postgresstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/systembuilderhub/hardening/tenancy"
)

// Store is a tenancy.Store on PostgreSQL.
type Store struct {
	db *sqlx.DB
}

var _ tenancy.Store = (*Store)(nil)

// ErrNotMigrated is returned by New when the database lacks the kit's
// tenancy schema (migrate.Up applies it).
var ErrNotMigrated = errors.New("tenancy/postgresstore: the tenancy schema is missing: run migrate.Up (Postgres migration 0002) first")

// checkTimeout bounds New's schema check.
const checkTimeout = 10 * time.Second

// New returns a store on db, a Postgres database migrated by migrate.Up.
// It checks, in one round trip, that the schema is there (ErrNotMigrated
// when it is not; the driver's error when the database does not answer).
func New(db *sqlx.DB) (*Store, error) {
	if db == nil {
		return nil, errors.New("tenancy/postgresstore: nil *sqlx.DB")
	}
	ctx, cancel := context.WithTimeout(context.Background(), checkTimeout)
	defer cancel()
	var ok bool
	if err := db.GetContext(ctx, &ok, `SELECT to_regclass('hardening_quota_overrides') IS NOT NULL
		AND to_regprocedure('hardening_quota_audit_page(text,bigint,bigint,integer)') IS NOT NULL`); err != nil {
		return nil, fmt.Errorf("tenancy/postgresstore: check schema: %w", err)
	}
	if !ok {
		return nil, ErrNotMigrated
	}
	return &Store{db: db}, nil
}

// scan runs one function call that returns one row of several columns.
func (s *Store) scan(ctx context.Context, op, query string, args []any, dest ...any) error {
	if err := s.db.QueryRowxContext(ctx, query, args...).Scan(dest...); err != nil {
		return fmt.Errorf("tenancy/postgresstore: %s: %w", op, err)
	}
	return nil
}
