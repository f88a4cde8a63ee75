package testenv

import (
	"context"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/jmoiron/sqlx"
)

// Statements counts the statements (Query, QueryRow and Exec calls, each
// one round trip once pgx has cached its prepared form) that a pool from
// OpenCounting sends. It is a pgx.QueryTracer; safe for concurrent use.
type Statements struct {
	mu  sync.Mutex
	sql []string
	n   int64 // all statements, Take or not
}

// TraceQueryStart records the statement.
func (s *Statements) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	s.mu.Lock()
	s.sql = append(s.sql, data.SQL)
	s.n++
	s.mu.Unlock()
	return ctx
}

// TraceQueryEnd does nothing.
func (s *Statements) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// N returns how many statements were sent since the pool opened.
func (s *Statements) N() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

// Take returns the statements sent since the last Take and forgets them.
func (s *Statements) Take() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.sql
	s.sql = nil
	return out
}

// OpenCounting returns another pool on the test's schema (closed at
// cleanup) whose statements are counted: the pgx.ConnConfig parsed from
// p.URL gets a Statements tracer, and stdlib.OpenDB makes the pool.
func (p *PostgresDB) OpenCounting(t testing.TB) (*sqlx.DB, *Statements) {
	t.Helper()
	cfg, err := pgx.ParseConfig(p.URL)
	if err != nil {
		t.Fatalf("testenv: parse %s: %v", p.URL, err)
	}
	st := &Statements{}
	cfg.Tracer = st
	db := sqlx.NewDb(stdlib.OpenDB(*cfg), "pgx")
	t.Cleanup(func() { _ = db.Close() })
	return db, st
}
