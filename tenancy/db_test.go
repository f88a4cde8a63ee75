package tenancy_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening/internal/testenv"
	"github.com/systembuilderhub/hardening/tenancy"
)

type widget struct {
	Tenant string `db:"tenant_id"`
	ID     int64  `db:"id"`
	Name   string `db:"name"`
}

func newWidgets(t *testing.T) (*tenancy.DB, func() []widget) {
	t.Helper()
	raw := testenv.SQLite(t)
	_, err := raw.Exec(`CREATE TABLE widgets (tenant_id TEXT NOT NULL, id INTEGER NOT NULL, name TEXT NOT NULL, PRIMARY KEY (tenant_id, id))`)
	require.NoError(t, err)
	_, err = raw.Exec(`INSERT INTO widgets VALUES ('a', 1, 'a1'), ('a', 2, 'a2'), ('b', 1, 'b1'), ('b', 2, 'b2')`)
	require.NoError(t, err)
	db, err := tenancy.NewDB(raw)
	require.NoError(t, err)
	all := func() []widget {
		var ws []widget
		require.NoError(t, raw.Select(&ws, `SELECT tenant_id, id, name FROM widgets ORDER BY tenant_id, id`))
		return ws
	}
	return db, all
}

func TestDBIsolation(t *testing.T) {
	db, all := newWidgets(t)
	ctxA := tenancy.WithTenant(context.Background(), "a")

	var ws []widget
	require.NoError(t, db.SelectContext(ctxA, &ws, `SELECT tenant_id, id, name FROM widgets WHERE tenant_id = :tenant_id ORDER BY id`, nil))
	assert.Equal(t, []widget{{"a", 1, "a1"}, {"a", 2, "a2"}}, ws)

	// A tenant_id in the arguments is overridden by the context's.
	ws = nil
	require.NoError(t, db.SelectContext(ctxA, &ws, `SELECT tenant_id, id, name FROM widgets WHERE tenant_id = :tenant_id ORDER BY id`, tenancy.Args{"tenant_id": "b"}))
	assert.Equal(t, []widget{{"a", 1, "a1"}, {"a", 2, "a2"}}, ws)

	var w widget
	require.NoError(t, db.GetContext(ctxA, &w, `SELECT tenant_id, id, name FROM widgets WHERE tenant_id = :tenant_id AND id = :id`, tenancy.Args{"id": 2, "tenant_id": "b"}))
	assert.Equal(t, widget{"a", 2, "a2"}, w)

	rows, err := db.QueryxContext(ctxA, `SELECT count(*) FROM widgets WHERE tenant_id = :tenant_id`, tenancy.Args{"tenant_id": "b"})
	require.NoError(t, err)
	require.True(t, rows.Next())
	var n int
	require.NoError(t, rows.Scan(&n))
	require.NoError(t, rows.Close())
	assert.Equal(t, 2, n)

	// Writes touch only A's rows, whatever the arguments say.
	res, err := db.ExecContext(ctxA, `UPDATE widgets SET name = :name WHERE tenant_id = :tenant_id`, tenancy.Args{"name": "renamed", "tenant_id": "b"})
	require.NoError(t, err)
	affected, _ := res.RowsAffected()
	assert.Equal(t, int64(2), affected)
	_, err = db.ExecContext(ctxA, `DELETE FROM widgets WHERE tenant_id = :tenant_id AND id = :id`, tenancy.Args{"id": 1, "tenant_id": "b"})
	require.NoError(t, err)
	_, err = db.ExecContext(ctxA, `INSERT INTO widgets (tenant_id, id, name) VALUES (:tenant_id, :id, :name)`, tenancy.Args{"id": 9, "name": "new", "tenant_id": "b"})
	require.NoError(t, err)
	assert.Equal(t, []widget{{"a", 2, "renamed"}, {"a", 9, "new"}, {"b", 1, "b1"}, {"b", 2, "b2"}}, all())

	// Transactions are bound to the tenant of the context they began with.
	tx, err := db.BeginTxx(ctxA, nil)
	require.NoError(t, err)
	assert.Equal(t, tenancy.ID("a"), tx.Tenant())
	ctxB := tenancy.WithTenant(context.Background(), "b")
	_, err = tx.ExecContext(ctxB, `DELETE FROM widgets WHERE tenant_id = :tenant_id`, nil)
	require.NoError(t, err)
	var left []widget
	require.NoError(t, tx.SelectContext(ctxB, &left, `SELECT tenant_id, id, name FROM widgets WHERE tenant_id = :tenant_id`, nil))
	assert.Empty(t, left)
	var cnt int
	require.NoError(t, tx.GetContext(ctxB, &cnt, `SELECT count(*) FROM widgets WHERE tenant_id = :tenant_id`, nil))
	assert.Equal(t, 0, cnt)
	require.NoError(t, tx.Commit())
	assert.Equal(t, []widget{{"b", 1, "b1"}, {"b", 2, "b2"}}, all())
}

func TestDBRefusesUnscoped(t *testing.T) {
	db, all := newWidgets(t)
	before := all()
	ctxA := tenancy.WithTenant(context.Background(), "a")
	for _, q := range []string{
		`DELETE FROM widgets`,
		`DELETE FROM widgets WHERE tenant_id = 'b'`,
		`DELETE FROM widgets WHERE tenant_id = :tenant`,
		`DELETE FROM widgets WHERE tenant_id = :tenant_idx`,
		`DELETE FROM widgets WHERE name = :tenant_id_name`,
	} {
		_, err := db.ExecContext(ctxA, q, tenancy.Args{"tenant": "a", "tenant_idx": "a", "tenant_id_name": "a1"})
		assert.ErrorIs(t, err, tenancy.ErrUnscopedQuery, q)
	}
	var ws []widget
	assert.ErrorIs(t, db.SelectContext(ctxA, &ws, `SELECT * FROM widgets`, nil), tenancy.ErrUnscopedQuery)
	assert.ErrorIs(t, db.GetContext(ctxA, &ws, `SELECT * FROM widgets`, nil), tenancy.ErrUnscopedQuery)
	_, err := db.QueryxContext(ctxA, `SELECT * FROM widgets`, nil)
	assert.ErrorIs(t, err, tenancy.ErrUnscopedQuery)

	// No tenant: nothing runs, even a scoped query.
	_, err = db.ExecContext(context.Background(), `DELETE FROM widgets WHERE tenant_id = :tenant_id`, nil)
	assert.ErrorIs(t, err, tenancy.ErrNoTenant)
	_, err = db.BeginTxx(context.Background(), nil)
	assert.ErrorIs(t, err, tenancy.ErrNoTenant)

	tx, err := db.BeginTxx(ctxA, nil)
	require.NoError(t, err)
	_, err = tx.ExecContext(ctxA, `DELETE FROM widgets`, nil)
	assert.ErrorIs(t, err, tenancy.ErrUnscopedQuery)
	require.NoError(t, tx.Rollback())
	assert.Equal(t, before, all(), "no refused statement reached the database")
}

func TestDBCrossTenant(t *testing.T) {
	raw := testenv.SQLite(t)
	log, buf := newLogger()
	db, err := tenancy.NewDB(raw, tenancy.WithLogger(log))
	require.NoError(t, err)
	_, err = db.CrossTenant(context.Background(), "")
	assert.ErrorIs(t, err, tenancy.ErrNoReason)
	admin, err := db.CrossTenant(context.Background(), "monthly usage report")
	require.NoError(t, err)
	assert.Same(t, raw, admin)
	assert.Contains(t, buf.String(), "cross-tenant database access")
	assert.Contains(t, buf.String(), "monthly usage report")
	assert.Contains(t, buf.String(), "db_test.go")
}

// levels records the level of every log record.
type levels struct {
	mu   sync.Mutex
	seen []slog.Level
}

func (h *levels) Enabled(context.Context, slog.Level) bool { return true }
func (h *levels) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *levels) WithGroup(string) slog.Handler            { return h }
func (h *levels) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seen = append(h.seen, r.Level)
	return nil
}

// A declared routine cross-tenant access logs at Debug on every call; an
// undeclared one keeps Warn.
func TestDBCrossTenantRoutine(t *testing.T) {
	raw := testenv.SQLite(t)
	h := &levels{}
	db, err := tenancy.NewDB(raw, tenancy.WithLogger(slog.New(h)), tenancy.WithRoutineCrossTenant("resolve tenant by API key"))
	require.NoError(t, err)
	ctx := context.Background()
	for range 3 {
		admin, err := db.CrossTenant(ctx, "resolve tenant by API key")
		require.NoError(t, err)
		assert.Same(t, raw, admin)
	}
	_, err = db.CrossTenant(ctx, "monthly usage report")
	require.NoError(t, err)
	assert.Equal(t, []slog.Level{slog.LevelDebug, slog.LevelDebug, slog.LevelDebug, slog.LevelWarn}, h.seen)

	_, err = tenancy.NewDB(raw, tenancy.WithRoutineCrossTenant(""))
	assert.ErrorIs(t, err, tenancy.ErrNoReason, "a routine escape needs a reason too")
}
