package postgresstore_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening/flags"
	"github.com/systembuilderhub/hardening/internal/testenv"
)

// tracer records the statements sent through the connections it is
// configured on, except the listener's.
type tracer struct {
	mu  sync.Mutex
	sql []string
}

func (tr *tracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	if strings.HasPrefix(d.SQL, "LISTEN ") || strings.Contains(d.SQL, "hardening_flags_channel()") {
		return ctx
	}
	tr.mu.Lock()
	tr.sql = append(tr.sql, d.SQL)
	tr.mu.Unlock()
	return ctx
}

func (tr *tracer) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// count returns how many statements fn sent.
func (tr *tracer) count(fn func()) int {
	tr.mu.Lock()
	n := len(tr.sql)
	tr.mu.Unlock()
	fn()
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return len(tr.sql) - n
}

func tracedDB(t *testing.T, p *testenv.PostgresDB) (*sqlx.DB, *tracer) {
	t.Helper()
	cfg, err := pgx.ParseConfig(p.URL)
	require.NoError(t, err)
	tr := &tracer{}
	cfg.Tracer = tr
	db := sqlx.NewDb(stdlib.OpenDB(*cfg), "pgx")
	t.Cleanup(func() { _ = db.Close() })
	return db, tr
}

// TestOneRoundTripPerCall: every store method is one statement, as the
// package doc's table says.
func TestOneRoundTripPerCall(t *testing.T) {
	db, tr := tracedDB(t, testenv.PostgresKit(t))
	s := newStore(t, db)
	ctx := context.Background()
	calls := map[string]func() error{
		"Toggle": func() error {
			_, err := s.Toggle(ctx, flags.ToggleRequest{Flag: "x", TenantID: "acme", Value: true, By: "ops", At: time.Now()})
			return err
		},
		"Version": func() error { _, err := s.Version(ctx); return err },
		"Load":    func() error { _, err := s.Load(ctx); return err },
		"Audit": func() error {
			_, err := s.Audit(ctx, flags.AuditQuery{Flag: "x", TenantID: "acme", ChangedBy: "ops", Since: time.Unix(1, 0), Cursor: flags.EncodeCursor(1 << 40), Limit: 3})
			return err
		},
	}
	for name, call := range calls {
		for range 2 { // the second call runs the cached statement
			var err error
			assert.Equal(t, 1, tr.count(func() { err = call() }), name)
			require.NoError(t, err, name)
		}
	}
}

// TestEvaluateCostsNoRoundTrip: a started client answers evaluations from
// its snapshot; the store sees no statement however many flags are read.
func TestEvaluateCostsNoRoundTrip(t *testing.T) {
	p := testenv.PostgresKit(t)
	db, tr := tracedDB(t, p)
	c := startClient(t, newStore(t, db))
	_, err := c.Toggle(context.Background(), "llm.streaming", true, flags.Change{By: "ops", TenantID: "acme"})
	require.NoError(t, err)
	waitListeners(t, p.DB, channelOf(p.Schema), 1)
	n := tr.count(func() {
		for range 10_000 {
			require.True(t, c.Enabled("llm.streaming", "acme", false))
			require.False(t, c.Enabled("llm.streaming", "globex", false))
		}
	})
	assert.Zero(t, n)
}
