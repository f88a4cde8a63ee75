package testenv

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/jmoiron/sqlx"
	sqlite3 "github.com/mattn/go-sqlite3"

	"github.com/systembuilderhub/hardening/internal/sqlitex"
	"github.com/systembuilderhub/hardening/migrate"
)

// SQLCounts are the round trips a SQLCounter saw since its last Reset.
// A round trip is one transaction (BEGIN … COMMIT/ROLLBACK, however many
// statements it holds) or one statement run outside a transaction (an
// implicit transaction of its own).
type SQLCounts struct {
	// Transactions counts explicit transactions; WriteTransactions those
	// of them opened with BEGIN IMMEDIATE or EXCLUSIVE.
	Transactions, WriteTransactions int
	// Reads counts SELECT statements outside a transaction, Writes the
	// other statements outside a transaction.
	Reads, Writes int
	// Log lists every statement in order, for failure messages.
	Log []string
}

// RoundTrips returns Transactions + Reads + Writes.
func (c SQLCounts) RoundTrips() int { return c.Transactions + c.Reads + c.Writes }

// String summarises the counts and lists the statements.
func (c SQLCounts) String() string {
	return fmt.Sprintf("%d transactions (%d write), %d reads and %d writes outside them:\n  %s",
		c.Transactions, c.WriteTransactions, c.Reads, c.Writes, strings.Join(c.Log, "\n  "))
}

// SQLCounter counts the SQLite round trips of one database opened with
// CountingSQLite. It is safe for concurrent use.
type SQLCounter struct {
	mu sync.Mutex
	c  SQLCounts
}

// Reset zeroes the counts.
func (s *SQLCounter) Reset() {
	s.mu.Lock()
	s.c = SQLCounts{}
	s.mu.Unlock()
}

// Counts returns the counts since the last Reset.
func (s *SQLCounter) Counts() SQLCounts {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.c
	c.Log = append([]string(nil), s.c.Log...)
	return c
}

// see records one statement run on a connection whose transaction state
// is *inTx.
func (s *SQLCounter) see(query string, inTx *bool) {
	q := strings.ToUpper(strings.TrimSpace(query))
	s.mu.Lock()
	defer s.mu.Unlock()
	s.c.Log = append(s.c.Log, strings.Join(strings.Fields(query), " "))
	switch {
	case strings.HasPrefix(q, "BEGIN"):
		*inTx = true
		s.c.Transactions++
		if strings.Contains(q, "IMMEDIATE") || strings.Contains(q, "EXCLUSIVE") {
			s.c.WriteTransactions++
		}
	case strings.HasPrefix(q, "COMMIT"), strings.HasPrefix(q, "END"), strings.HasPrefix(q, "ROLLBACK"):
		*inTx = false
	case *inTx:
	case strings.HasPrefix(q, "SELECT"):
		s.c.Reads++
	default:
		s.c.Writes++
	}
}

// CountingSQLite is SQLite (a migrated database in t.TempDir(), closed at
// cleanup) whose connections report every statement to the returned
// counter, reset after the migrations. Tests use it to prove how many
// round trips an operation costs.
func CountingSQLite(t testing.TB) (*sqlx.DB, *SQLCounter) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "test.db")
	counter := &SQLCounter{}
	db := sqlx.NewDb(sql.OpenDB(&countingConnector{dsn: sqlitex.DSN(path, 0), counter: counter}), sqlitex.DriverName)
	t.Cleanup(func() { _ = db.Close() })
	if _, err := migrate.Up(context.Background(), db); err != nil {
		t.Fatalf("testenv: migrate %s: %v", path, err)
	}
	counter.Reset()
	return db, counter
}

// countingConnector opens mattn/go-sqlite3 connections wrapped in
// countingConn.
type countingConnector struct {
	dsn     string
	counter *SQLCounter
}

func (c *countingConnector) Connect(context.Context) (driver.Conn, error) {
	conn, err := (&sqlite3.SQLiteDriver{}).Open(c.dsn)
	if err != nil {
		return nil, err
	}
	return &countingConn{SQLiteConn: conn.(*sqlite3.SQLiteConn), counter: c.counter}, nil
}

func (c *countingConnector) Driver() driver.Driver { return &sqlite3.SQLiteDriver{} }

// countingConn reports the statements of one connection.
type countingConn struct {
	*sqlite3.SQLiteConn
	counter *SQLCounter
	inTx    bool
}

func (c *countingConn) ExecContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Result, error) {
	c.counter.see(q, &c.inTx)
	return c.SQLiteConn.ExecContext(ctx, q, args)
}

func (c *countingConn) QueryContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Rows, error) {
	c.counter.see(q, &c.inTx)
	return c.SQLiteConn.QueryContext(ctx, q, args)
}

func (c *countingConn) PrepareContext(ctx context.Context, q string) (driver.Stmt, error) {
	st, err := c.SQLiteConn.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	return &countingStmt{SQLiteStmt: st.(*sqlite3.SQLiteStmt), conn: c, query: q}, nil
}

func (c *countingConn) Prepare(q string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), q)
}

// BeginTx is a database/sql transaction (db.BeginTx): counted as a
// deferred one.
func (c *countingConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	c.counter.see("BEGIN", &c.inTx)
	tx, err := c.SQLiteConn.BeginTx(ctx, opts)
	if err != nil {
		c.inTx = false
		return nil, err
	}
	return &countingTx{Tx: tx, conn: c}, nil
}

func (c *countingConn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

type countingTx struct {
	driver.Tx
	conn *countingConn
}

func (t *countingTx) Commit() error {
	t.conn.counter.see("COMMIT", &t.conn.inTx)
	return t.Tx.Commit()
}

func (t *countingTx) Rollback() error {
	t.conn.counter.see("ROLLBACK", &t.conn.inTx)
	return t.Tx.Rollback()
}

// countingStmt reports each execution of a prepared statement.
type countingStmt struct {
	*sqlite3.SQLiteStmt
	conn  *countingConn
	query string
}

func (s *countingStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	s.conn.counter.see(s.query, &s.conn.inTx)
	return s.SQLiteStmt.ExecContext(ctx, args)
}

func (s *countingStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	s.conn.counter.see(s.query, &s.conn.inTx)
	return s.SQLiteStmt.QueryContext(ctx, args)
}
