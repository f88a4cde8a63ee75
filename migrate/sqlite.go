package migrate

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/systembuilderhub/hardening/internal/sqlitex"
)

const bootstrapSQLite = `
CREATE TABLE IF NOT EXISTS hardening_schema_migrations (
	set_name   TEXT    NOT NULL,
	version    INTEGER NOT NULL,
	name       TEXT    NOT NULL,
	checksum   TEXT    NOT NULL,
	applied_at TEXT    NOT NULL,
	PRIMARY KEY (set_name, version)
);
CREATE TABLE IF NOT EXISTS hardening_schema_lock (
	id          INTEGER PRIMARY KEY CHECK (id = 1),
	owner       TEXT NOT NULL,
	acquired_at TEXT NOT NULL,
	expires_at  TEXT NOT NULL
);`

// queryer is what a write transaction offers to the runner.
type queryer interface {
	sqlx.ExecerContext
	GetContext(ctx context.Context, dest any, query string, args ...any) error
	SelectContext(ctx context.Context, dest any, query string, args ...any) error
}

// sqliteSession is Up's hold on a SQLite database: the lock row it owns.
// SQLite has no session locks shared across processes, so the lock is a
// row with an expiry (WithLockTTL) that the holder refreshes.
type sqliteSession struct {
	m     *Migrator
	owner string
}

func (m *Migrator) writeTx(ctx context.Context, fn func(q queryer) error) error {
	return sqlitex.Immediate(ctx, m.db, func(c *sqlx.Conn) error { return fn(c) })
}

func (m *Migrator) beginSQLite(ctx context.Context) (session, error) {
	if err := m.writeTx(ctx, func(q queryer) error {
		_, err := q.ExecContext(ctx, bootstrapSQLite)
		return err
	}); err != nil {
		return nil, fmt.Errorf("migrate: create bookkeeping tables: %w", err)
	}
	owner, err := m.lock(ctx)
	if err != nil {
		return nil, err
	}
	return &sqliteSession{m: m, owner: owner}, nil
}

func (s *sqliteSession) applied(ctx context.Context) (map[string][]Applied, error) {
	return s.m.sqliteApplied(ctx)
}

func (s *sqliteSession) release(ctx context.Context) { s.m.unlock(ctx, s.owner) }

func (m *Migrator) sqliteApplied(ctx context.Context) (map[string][]Applied, error) {
	var n int
	if err := m.db.GetContext(ctx, &n, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?`, versionsTable); err != nil {
		return nil, err
	}
	out := map[string][]Applied{}
	if n == 0 {
		return out, nil
	}
	rows, err := m.db.QueryContext(ctx, `SELECT set_name, version, name, checksum, applied_at FROM `+versionsTable+` ORDER BY set_name, version`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var a Applied
		if err := rows.Scan(&a.Set, &a.Version, &a.Name, &a.Checksum, &a.appliedAt); err != nil {
			return nil, err
		}
		a.AppliedAt, _ = time.Parse(time.RFC3339Nano, a.appliedAt)
		out[a.Set] = append(out[a.Set], a)
	}
	return out, rows.Err()
}

func (s *sqliteSession) apply(ctx context.Context, mig Migration) (bool, error) {
	m, owner := s.m, s.owner
	applied := false
	err := m.writeTx(ctx, func(q queryer) error {
		// The lock must still be ours: a holder that stalled past the TTL
		// must not apply anything after another process took over.
		var holder string
		if err := q.GetContext(ctx, &holder, `SELECT owner FROM `+lockTable+` WHERE id = 1`); err != nil || holder != owner {
			return fmt.Errorf("migrate: lost the migration lock before %s/%04d", mig.Set, mig.Version)
		}
		var n int
		if err := q.GetContext(ctx, &n, `SELECT count(*) FROM `+versionsTable+` WHERE set_name = ? AND version = ?`, mig.Set, mig.Version); err != nil {
			return err
		}
		if n > 0 {
			return nil
		}
		if _, err := q.ExecContext(ctx, mig.sql); err != nil {
			return fmt.Errorf("migrate: apply %s/%04d_%s: %w", mig.Set, mig.Version, mig.Name, err)
		}
		now := m.now().UTC()
		if _, err := q.ExecContext(ctx, `INSERT INTO `+versionsTable+` (set_name, version, name, checksum, applied_at) VALUES (?, ?, ?, ?, ?)`,
			mig.Set, mig.Version, mig.Name, mig.Checksum, now.Format(time.RFC3339Nano)); err != nil {
			return err
		}
		_, err := q.ExecContext(ctx, `UPDATE `+lockTable+` SET expires_at = ? WHERE id = 1 AND owner = ?`,
			now.Add(m.lockTTL).Format(time.RFC3339Nano), owner)
		applied = true
		return err
	})
	return applied && err == nil, err
}

func (m *Migrator) lock(ctx context.Context) (string, error) {
	var b [16]byte
	_, _ = rand.Read(b[:])
	owner := hex.EncodeToString(b[:])
	wait := 20 * time.Millisecond
	for {
		got := false
		err := m.writeTx(ctx, func(q queryer) error {
			now := m.now().UTC()
			if _, err := q.ExecContext(ctx, `DELETE FROM `+lockTable+` WHERE id = 1 AND expires_at < ?`, now.Format(time.RFC3339Nano)); err != nil {
				return err
			}
			res, err := q.ExecContext(ctx, `INSERT OR IGNORE INTO `+lockTable+` (id, owner, acquired_at, expires_at) VALUES (1, ?, ?, ?)`,
				owner, now.Format(time.RFC3339Nano), now.Add(m.lockTTL).Format(time.RFC3339Nano))
			if err != nil {
				return err
			}
			n, err := res.RowsAffected()
			got = n == 1
			return err
		})
		if err != nil {
			return "", fmt.Errorf("migrate: take lock: %w", err)
		}
		if got {
			return owner, nil
		}
		if err := backoff(ctx, &wait); err != nil {
			return "", err
		}
	}
}

// backoff sleeps *wait (doubling it up to 500ms for the next call), or
// returns ErrLockTimeout when ctx ends first.
func backoff(ctx context.Context, wait *time.Duration) error {
	t := time.NewTimer(*wait)
	select {
	case <-ctx.Done():
		t.Stop()
		return fmt.Errorf("%w: %w", ErrLockTimeout, ctx.Err())
	case <-t.C:
	}
	if *wait < 500*time.Millisecond {
		*wait *= 2
	}
	return nil
}

func (m *Migrator) unlock(ctx context.Context, owner string) {
	if err := m.writeTx(ctx, func(q queryer) error {
		_, err := q.ExecContext(ctx, `DELETE FROM `+lockTable+` WHERE id = 1 AND owner = ?`, owner)
		return err
	}); err != nil {
		m.log.WarnContext(ctx, "migrate: release lock", "err", err)
	}
}
