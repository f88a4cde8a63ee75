package migrate

import (
	"context"
	"database/sql/driver"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
)

// On Postgres the bookkeeping table lives in the connection's
// current_schema(), like the tables the migrations create. There is no
// lock table: the lock is a session-level advisory lock.
const bootstrapPostgres = `
CREATE TABLE IF NOT EXISTS hardening_schema_migrations (
	set_name   text        NOT NULL,
	version    integer     NOT NULL,
	name       text        NOT NULL,
	checksum   text        NOT NULL,
	applied_at timestamptz NOT NULL,
	PRIMARY KEY (set_name, version)
)`

// postgresLockKey is the advisory-lock key of the connection's schema.
// Advisory locks are database-wide, so the key is derived from
// current_schema(): Migrators on one schema exclude each other, and those
// on different schemas of one database do not.
const postgresLockKey = `SELECT hashtextextended('hardening_migrate:' || coalesce(current_schema(), ''), 0)`

const postgresTableExists = `SELECT EXISTS (
	SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
	WHERE n.nspname = current_schema() AND c.relname = $1)`

// postgresSession is Up's hold on a Postgres database: one connection,
// taken from the pool for the whole run, that holds the schema's
// session-level advisory lock. Every read and write of the run goes
// through it, so Up needs a single connection however small the pool is.
// If the process dies, the server ends the session and releases the lock;
// no expiry is involved (WithLockTTL does not apply).
type postgresSession struct {
	m    *Migrator
	conn *sqlx.Conn
	key  int64
}

func (m *Migrator) beginPostgres(ctx context.Context) (session, error) {
	conn, err := m.db.Connx(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrate: take lock: %w", err)
	}
	s := &postgresSession{m: m, conn: conn}
	if err := s.lock(ctx); err != nil {
		// The lock may have been granted as ctx ended: never hand a
		// connection that might hold it back to the pool.
		s.discard()
		return nil, err
	}
	// Under the lock: concurrent CREATE TABLE IF NOT EXISTS can fail on
	// Postgres.
	if _, err := conn.ExecContext(ctx, bootstrapPostgres); err != nil {
		s.release(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("migrate: create bookkeeping tables: %w", err)
	}
	return s, nil
}

// lock polls pg_try_advisory_lock with back-off until it holds the lock or
// ctx ends (ErrLockTimeout).
func (s *postgresSession) lock(ctx context.Context) error {
	if err := s.conn.GetContext(ctx, &s.key, postgresLockKey); err != nil {
		return fmt.Errorf("migrate: take lock: %w", err)
	}
	wait := 20 * time.Millisecond
	for {
		var got bool
		if err := s.conn.GetContext(ctx, &got, `SELECT pg_try_advisory_lock($1)`, s.key); err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("%w: %w", ErrLockTimeout, ctx.Err())
			}
			return fmt.Errorf("migrate: take lock: %w", err)
		}
		if got {
			return nil
		}
		if err := backoff(ctx, &wait); err != nil {
			return err
		}
	}
}

func (s *postgresSession) applied(ctx context.Context) (map[string][]Applied, error) {
	return postgresApplied(ctx, s.conn)
}

func postgresApplied(ctx context.Context, q sqlx.QueryerContext) (map[string][]Applied, error) {
	var exists bool
	if err := sqlx.GetContext(ctx, q, &exists, postgresTableExists, versionsTable); err != nil {
		return nil, err
	}
	out := map[string][]Applied{}
	if !exists {
		return out, nil
	}
	rows, err := q.QueryContext(ctx, `SELECT set_name, version, name, checksum, applied_at FROM `+versionsTable+` ORDER BY set_name, version`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var a Applied
		if err := rows.Scan(&a.Set, &a.Version, &a.Name, &a.Checksum, &a.AppliedAt); err != nil {
			return nil, err
		}
		a.AppliedAt = a.AppliedAt.UTC()
		out[a.Set] = append(out[a.Set], a)
	}
	return out, rows.Err()
}

// apply runs mig and records it in one transaction (Postgres DDL is
// transactional), so a migration that fails leaves nothing behind.
func (s *postgresSession) apply(ctx context.Context, mig Migration) (bool, error) {
	tx, err := s.conn.BeginTxx(ctx, nil)
	if err != nil {
		return false, err
	}
	defer func() { _ = tx.Rollback() }() // no-op after Commit
	var n int
	if err := tx.GetContext(ctx, &n, `SELECT count(*) FROM `+versionsTable+` WHERE set_name = $1 AND version = $2`, mig.Set, mig.Version); err != nil {
		return false, err
	}
	if n > 0 {
		return false, nil
	}
	// Without arguments the pgx driver sends the file with the simple
	// protocol, so it may hold several statements.
	if _, err := tx.ExecContext(ctx, mig.sql); err != nil {
		return false, fmt.Errorf("migrate: apply %s/%04d_%s: %w", mig.Set, mig.Version, mig.Name, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO `+versionsTable+` (set_name, version, name, checksum, applied_at) VALUES ($1, $2, $3, $4, $5)`,
		mig.Set, mig.Version, mig.Name, mig.Checksum, s.m.now().UTC()); err != nil {
		return false, err
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("migrate: commit %s/%04d_%s: %w", mig.Set, mig.Version, mig.Name, err)
	}
	return true, nil
}

// release unlocks and returns the connection to the pool. When the unlock
// fails the connection is closed instead, which ends the session and so
// releases the lock on the server.
func (s *postgresSession) release(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var ok bool
	if err := s.conn.GetContext(ctx, &ok, `SELECT pg_advisory_unlock($1)`, s.key); err != nil || !ok {
		s.m.log.WarnContext(ctx, "migrate: release lock; closing its connection instead", "err", err, "held", ok)
		s.discard()
		return
	}
	_ = s.conn.Close()
}

// discard closes the connection rather than returning it to the pool.
func (s *postgresSession) discard() {
	_ = s.conn.Raw(func(any) error { return driver.ErrBadConn })
	_ = s.conn.Close()
}
