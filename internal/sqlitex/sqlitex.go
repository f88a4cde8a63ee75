// Package sqlitex holds the SQLite conventions every SQLite store of the kit
// shares: how a database is opened (WAL, busy_timeout, foreign keys) and how
// a state change runs in one BEGIN IMMEDIATE transaction.
package sqlitex

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"net/url"
	"os"
	"runtime"
	"sync"
	"time"
	"weak"

	"github.com/jmoiron/sqlx"
	sqlite3 "github.com/mattn/go-sqlite3"
)

// DriverName is the database/sql driver the kit uses for SQLite.
const DriverName = "sqlite3"

// DefaultBusyTimeout is how long a connection waits for another writer's
// lock before it fails with SQLITE_BUSY.
const DefaultBusyTimeout = 5 * time.Second

// StmtCacheSize is how many prepared statements each connection keeps:
// more than the distinct hot queries of all the kit's stores together.
const StmtCacheSize = 64

// DSN returns the mattn/go-sqlite3 data source name for the file at path
// with the pragmas the kit expects: WAL journal, busy timeout, foreign keys
// on and synchronous=NORMAL (durable in WAL mode across process crashes),
// and a per-connection cache of StmtCacheSize prepared statements, so the
// stores' fixed queries are parsed once per connection rather than on every
// call (the driver re-prepares a cached statement after a schema change).
func DSN(path string, busyTimeout time.Duration) string {
	if busyTimeout <= 0 {
		busyTimeout = DefaultBusyTimeout
	}
	q := url.Values{}
	q.Set("_journal_mode", "WAL")
	q.Set("_busy_timeout", fmt.Sprint(busyTimeout.Milliseconds()))
	q.Set("_foreign_keys", "on")
	q.Set("_synchronous", "NORMAL")
	q.Set("_stmt_cache_size", fmt.Sprint(StmtCacheSize))
	return "file:" + path + "?" + q.Encode()
}

// Open opens the SQLite file at path (creating it when absent) and checks
// that it is a usable database by running a query, so a bad path, an
// unwritable directory or a corrupt file fail here with one clear error.
//
// A file Open creates is readable and writable by its owner only (mode
// 0600), and so are the -wal and -shm files beside it, which SQLite gives
// the database file's mode: the kit's stores keep signing keys there. An
// existing file keeps its mode.
func Open(ctx context.Context, path string, busyTimeout time.Duration) (*sqlx.DB, error) {
	if path == "" {
		return nil, errors.New("sqlite: empty database path")
	}
	createPrivate(path)
	db, err := sqlx.Open(DriverName, DSN(path, busyTimeout))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	// Switching a new file to WAL takes a lock that busy_timeout does not
	// cover when several processes create the file at once: retry busy
	// errors until the busy timeout has passed.
	deadline := time.Now().Add(busyTimeout)
	if busyTimeout <= 0 {
		deadline = time.Now().Add(DefaultBusyTimeout)
	}
	for wait := 5 * time.Millisecond; ; wait = min(wait*2, 200*time.Millisecond) {
		err = probe(ctx, db)
		if err == nil {
			return db, nil
		}
		if !IsBusy(err) || time.Now().After(deadline) {
			_ = db.Close()
			return nil, fmt.Errorf("sqlite: open %s: %w", path, diagnose(path, err))
		}
		select {
		case <-ctx.Done():
			_ = db.Close()
			return nil, fmt.Errorf("sqlite: open %s: %w", path, ctx.Err())
		case <-time.After(wait):
		}
	}
}

// createPrivate creates path empty with mode 0600 when it does not exist
// (an empty file is a new SQLite database). Any failure is left for the
// open to report in SQLite's words.
func createPrivate(path string) {
	if path == ":memory:" {
		return
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err == nil {
		_ = f.Close()
	}
}

// probe runs the queries that prove the file is a usable database.
func probe(ctx context.Context, db *sqlx.DB) error {
	var mode string
	if err := db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return err
	}
	var n int
	return db.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_master").Scan(&n)
}

// Immediate runs fn inside one BEGIN IMMEDIATE transaction on a dedicated
// connection: the write lock is taken up front, so two processes doing
// read-then-write never deadlock on a lock upgrade, and busy_timeout makes
// the second one wait instead of failing. fn's error (or a panic) rolls the
// transaction back; otherwise it commits. A connection whose rollback fails
// is discarded rather than returned to the pool mid-transaction.
//
// Inside one process the transactions on one db first queue on a Go gate,
// so they wait for each other without SQLite's busy handler, which sleeps
// in steps of up to 100ms and made the latency tail of concurrent writers
// tens of milliseconds. Other processes still meet through busy_timeout. A
// gate held for longer than DefaultBusyTimeout is bypassed, leaving the
// wait to SQLite as before.
func Immediate(ctx context.Context, db *sqlx.DB, fn func(conn *sqlx.Conn) error) (err error) {
	gate, held, err := acquireGate(ctx, db)
	if err != nil {
		return err
	}
	if held {
		defer func() { <-gate }()
	}
	conn, err := db.Connx(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return err
	}
	committed := false
	defer func() {
		if committed {
			return
		}
		// Roll back even when ctx is already cancelled.
		if _, rbErr := conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK"); rbErr != nil {
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		}
	}()
	if err := fn(conn); err != nil {
		return err
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		return err
	}
	committed = true
	return nil
}

// writeGates holds one gate (a one-slot semaphore) per open database,
// keyed weakly so a closed and collected *sqlx.DB drops its entry.
var writeGates sync.Map // weak.Pointer[sqlx.DB] -> chan struct{}

func gateFor(db *sqlx.DB) chan struct{} {
	k := weak.Make(db)
	if g, ok := writeGates.Load(k); ok {
		return g.(chan struct{})
	}
	g, loaded := writeGates.LoadOrStore(k, make(chan struct{}, 1))
	if !loaded {
		runtime.AddCleanup(db, func(k weak.Pointer[sqlx.DB]) { writeGates.Delete(k) }, k)
	}
	return g.(chan struct{})
}

// acquireGate takes db's gate, waiting at most DefaultBusyTimeout (then
// going on without it: held is false) or until ctx ends. The caller
// releases a held gate by receiving from it.
func acquireGate(ctx context.Context, db *sqlx.DB) (gate chan struct{}, held bool, err error) {
	g := gateFor(db)
	select {
	case g <- struct{}{}:
		return g, true, nil
	default:
	}
	t := time.NewTimer(DefaultBusyTimeout)
	defer t.Stop()
	select {
	case g <- struct{}{}:
		return g, true, nil
	case <-ctx.Done():
		return nil, false, ctx.Err()
	case <-t.C:
		return g, false, nil
	}
}

// IsBusy reports whether err is SQLite's SQLITE_BUSY or SQLITE_LOCKED: the
// database was locked by another connection for longer than busy_timeout.
func IsBusy(err error) bool {
	var se sqlite3.Error
	if errors.As(err, &se) {
		return se.Code == sqlite3.ErrBusy || se.Code == sqlite3.ErrLocked
	}
	return false
}

// IsUniqueViolation reports whether err is a UNIQUE or PRIMARY KEY
// constraint failure.
func IsUniqueViolation(err error) bool {
	var se sqlite3.Error
	if errors.As(err, &se) {
		return se.ExtendedCode == sqlite3.ErrConstraintUnique || se.ExtendedCode == sqlite3.ErrConstraintPrimaryKey
	}
	return false
}
