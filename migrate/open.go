package migrate

import (
	"context"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/systembuilderhub/hardening/internal/sqlitex"
)

// OpenSQLite opens (creating when absent) the SQLite file at path with the
// settings every SQLite store of the kit expects: WAL journal, busy_timeout
// (busyTimeout; 0 means 5s), foreign keys on. It runs a query before
// returning, so an unwritable path or a file that is not a database fails
// here with one clear error. A file it creates is readable by its owner
// only (mode 0600), and so are its -wal and -shm files. The caller closes
// the returned DB.
func OpenSQLite(ctx context.Context, path string, busyTimeout time.Duration) (*sqlx.DB, error) {
	return sqlitex.Open(ctx, path, busyTimeout)
}

// Up applies pending migrations of the kit's set (and any set given with
// WithSet) on db. See Migrator.Up.
func Up(ctx context.Context, db *sqlx.DB, opts ...Option) ([]Migration, error) {
	m, err := New(db, opts...)
	if err != nil {
		return nil, err
	}
	return m.Up(ctx)
}

// StatusOf reports the migration status of db. See Migrator.Status.
func StatusOf(ctx context.Context, db *sqlx.DB, opts ...Option) (Status, error) {
	m, err := New(db, opts...)
	if err != nil {
		return Status{}, err
	}
	return m.Status(ctx)
}

// Enforce runs the startup check p on db. See Migrator.Enforce.
func Enforce(ctx context.Context, db *sqlx.DB, p Policy, opts ...Option) (Status, error) {
	m, err := New(db, opts...)
	if err != nil {
		return Status{}, err
	}
	return m.Enforce(ctx, p)
}
