package tenancy_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening/internal/testenv"
	"github.com/systembuilderhub/hardening/tenancy"
)

// pgWidgets puts a widgets table under row-level security with
// RowLevelSecuritySQL, writes rows a1, a2, b1, b2 as the superuser, and
// returns the schema, an application role without BYPASSRLS (one
// connection, so a setting that leaked past its transaction would show),
// a tenancy.DB on the role and its log.
func pgWidgets(t *testing.T) (*testenv.PostgresDB, *testenv.PostgresRole, *tenancy.DB, *bytes.Buffer) {
	t.Helper()
	p := testenv.Postgres(t)
	p.DB.MustExec(`CREATE TABLE widgets (tenant_id text NOT NULL, id bigint NOT NULL, name text NOT NULL, PRIMARY KEY (tenant_id, id))`)
	p.DB.MustExec(`INSERT INTO widgets VALUES ('a', 1, 'a1'), ('a', 2, 'a2'), ('b', 1, 'b1'), ('b', 2, 'b2')`)
	rls, err := tenancy.RowLevelSecuritySQL("widgets", "tenant_id")
	require.NoError(t, err)
	p.DB.MustExec(rls)
	role := p.AppRole(t)
	role.DB.SetMaxOpenConns(1)
	log, buf := newLogger()
	db, err := tenancy.NewDB(role.DB, tenancy.WithLogger(log))
	require.NoError(t, err)
	return p, role, db, buf
}

func names(t *testing.T, ws []widget) []string {
	t.Helper()
	var out []string
	for _, w := range ws {
		out = append(out, w.Name)
	}
	return out
}

// rawCount counts the widgets the role sees with no tenant set.
func rawCount(t *testing.T, db *sqlx.DB) int {
	t.Helper()
	var n int
	require.NoError(t, db.Get(&n, `SELECT count(*) FROM widgets`))
	return n
}

// A query whose filter does not hold back other tenants' rows (it passes
// the :tenant_id check) still returns only the current tenant's rows:
// Postgres filters them. The same query without RLS (as the superuser)
// returns every row.
func TestPostgresRLSScopesUnfilteredQuery(t *testing.T) {
	p, _, db, _ := pgWidgets(t)
	ctxA := tenancy.WithTenant(context.Background(), "a")
	const unfiltered = `SELECT tenant_id, id, name FROM widgets WHERE tenant_id = :tenant_id OR 1 = 1 ORDER BY tenant_id, id`
	var ws []widget
	require.NoError(t, db.SelectContext(ctxA, &ws, unfiltered, nil))
	assert.Equal(t, []string{"a1", "a2"}, names(t, ws), "RLS returns only tenant a's rows")

	super, err := tenancy.NewDB(p.DB)
	require.NoError(t, err)
	ws = nil
	require.NoError(t, super.SelectContext(ctxA, &ws, unfiltered, nil))
	assert.Len(t, ws, 4, "without RLS (superuser) the query reads every tenant")

	var n int
	require.NoError(t, db.GetContext(tenancy.WithTenant(context.Background(), "b"), &n,
		`SELECT count(*) FROM widgets WHERE :tenant_id <> 'x'`, nil))
	assert.Equal(t, 2, n, "b's rows only")

	res, err := db.ExecContext(ctxA, `UPDATE widgets SET name = name || '!' WHERE tenant_id = :tenant_id OR true`, nil)
	require.NoError(t, err)
	affected, err := res.RowsAffected()
	require.NoError(t, err)
	assert.Equal(t, int64(2), affected, "an unfiltered update touches only tenant a's rows")

	_, err = db.ExecContext(ctxA, `INSERT INTO widgets (tenant_id, id, name) VALUES ('b', 9, :tenant_id)`, nil)
	assert.ErrorContains(t, err, "row-level security", "a row of another tenant cannot be written")

	tx, err := db.BeginTxx(tenancy.WithTenant(context.Background(), "b"), nil)
	require.NoError(t, err)
	rows, err := tx.QueryxContext(t.Context(), `SELECT name FROM widgets WHERE :tenant_id <> 'x' ORDER BY id`, nil)
	require.NoError(t, err)
	var got []string
	for rows.Next() {
		var s string
		require.NoError(t, rows.Scan(&s))
		got = append(got, s)
	}
	require.NoError(t, rows.Close())
	require.NoError(t, tx.Commit())
	assert.Equal(t, []string{"b1", "b2"}, got, "a transaction is scoped to its tenant")
}

// With no tenant set, a query sees no row and a write fails; the
// setting of DB's transactions never outlives them on the pooled
// connection.
func TestPostgresRLSNoTenant(t *testing.T) {
	_, role, db, _ := pgWidgets(t)
	assert.Equal(t, 0, rawCount(t, role.DB), "no tenant: no row")
	_, err := role.DB.Exec(`INSERT INTO widgets (tenant_id, id, name) VALUES ('a', 9, 'x')`)
	assert.ErrorContains(t, err, "row-level security", "no tenant: no write")
	res, err := role.DB.Exec(`DELETE FROM widgets`)
	require.NoError(t, err)
	n, _ := res.RowsAffected()
	assert.Zero(t, n, "no tenant: nothing to delete")

	ctxA := tenancy.WithTenant(context.Background(), "a")
	var ws []widget
	require.NoError(t, db.SelectContext(ctxA, &ws, `SELECT tenant_id, id, name FROM widgets WHERE tenant_id = :tenant_id`, nil))
	require.Len(t, ws, 2)
	assert.Equal(t, 0, rawCount(t, role.DB), "the tenant was set for DB's transaction only (same connection)")

	_, err = db.ExecContext(context.Background(), `DELETE FROM widgets WHERE tenant_id = :tenant_id`, nil)
	assert.ErrorIs(t, err, tenancy.ErrNoTenant)
	_, err = db.QueryxContext(ctxA, `SELECT name FROM widgets WHERE tenant_id = :tenant_id`, nil)
	assert.ErrorIs(t, err, tenancy.ErrRowsNeedTx, "rows would outlive the tenant's transaction")
}

// The escape hatch works under RLS, only inside its own transaction, and
// is logged with its reason and caller.
func TestPostgresCrossTenant(t *testing.T) {
	_, role, db, buf := pgWidgets(t)
	ctx := context.Background()
	count := func(tx *sqlx.Tx, n *int) error { return tx.GetContext(ctx, n, `SELECT count(*) FROM widgets`) }
	var n int
	assert.ErrorIs(t, db.CrossTenantTx(ctx, "", func(tx *sqlx.Tx) error { return count(tx, &n) }), tenancy.ErrNoReason)
	assert.Empty(t, buf.String(), "a refused escape is not run")

	require.NoError(t, db.CrossTenantTx(ctx, "monthly usage report", func(tx *sqlx.Tx) error { return count(tx, &n) }))
	assert.Equal(t, 4, n, "every tenant's rows")
	assert.Contains(t, buf.String(), "cross-tenant database access")
	assert.Contains(t, buf.String(), "monthly usage report")
	assert.Contains(t, buf.String(), "db_postgres_test.go")

	require.NoError(t, db.CrossTenantTx(ctx, "archive", func(tx *sqlx.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE widgets SET name = 'archived'`)
		return err
	}))
	var archived int
	require.NoError(t, db.CrossTenantTx(ctx, "check", func(tx *sqlx.Tx) error {
		return tx.GetContext(ctx, &archived, `SELECT count(*) FROM widgets WHERE name = 'archived'`)
	}))
	assert.Equal(t, 4, archived, "writes across tenants")
	assert.Equal(t, 0, rawCount(t, role.DB), "the escape ended with its transaction (same connection)")

	raw, err := db.CrossTenant(ctx, "raw handle")
	require.NoError(t, err)
	assert.Equal(t, 0, rawCount(t, raw), "the raw handle sets nothing: RLS shows it no row")
}

// firstWords keeps each statement's first two words.
func firstWords(sql []string) []string {
	out := make([]string, len(sql))
	for i, q := range sql {
		f := strings.Fields(q)
		out[i] = strings.Join(f[:min(2, len(f))], " ")
	}
	return out
}

// The round trips of DB on Postgres, as documented: a single statement
// takes BEGIN, set_config, the statement and COMMIT; a Tx adds set_config
// once.
func TestPostgresDBRoundTrips(t *testing.T) {
	p, _, _, _ := pgWidgets(t)
	raw, rec := p.OpenCounting(t)
	db, err := tenancy.NewDB(raw)
	require.NoError(t, err)
	ctx := tenancy.WithTenant(context.Background(), "a")
	var n int
	require.NoError(t, db.GetContext(ctx, &n, `SELECT count(*) FROM widgets WHERE tenant_id = :tenant_id`, nil))
	assert.Equal(t, []string{"begin", "SELECT set_config($1,", "SELECT count(*)", "commit"}, firstWords(rec.Take()))

	tx, err := db.BeginTxx(ctx, nil)
	require.NoError(t, err)
	_, err = tx.ExecContext(ctx, `UPDATE widgets SET name = name WHERE tenant_id = :tenant_id`, nil)
	require.NoError(t, err)
	require.NoError(t, tx.GetContext(ctx, &n, `SELECT count(*) FROM widgets WHERE tenant_id = :tenant_id`, nil))
	require.NoError(t, tx.Commit())
	assert.Equal(t, []string{"begin", "SELECT set_config($1,", "UPDATE widgets", "SELECT count(*)", "commit"}, firstWords(rec.Take()))
}

// Attack: once a connection has run one tenant transaction, Postgres keeps
// app.tenant_id defined for the session with the value "" (the empty string, not NULL) after
// it ends. A policy comparing the tenant column with it then admits rows
// whose tenant is empty: code with no tenant set could write such a row and
// read it back on any connection the pool had used. No tenant set must
// still mean no row and no write.
func TestPostgresRLSNoTenantAfterPooledUse(t *testing.T) {
	_, role, db, _ := pgWidgets(t)
	var n int
	require.NoError(t, db.GetContext(tenancy.WithTenant(context.Background(), "a"), &n,
		`SELECT count(*) FROM widgets WHERE tenant_id = :tenant_id`, nil)) // the one connection now knows app.tenant_id
	var setting *string
	require.NoError(t, role.DB.Get(&setting, `SELECT current_setting('app.tenant_id', true)`))
	require.NotNil(t, setting, "precondition: the setting outlives its transaction as ''")
	assert.Empty(t, *setting)

	_, err := role.DB.Exec(`INSERT INTO widgets (tenant_id, id, name) VALUES ('', 9, 'x')`)
	assert.ErrorContains(t, err, "row-level security", "no tenant: no write, even of tenant ''")
	assert.Equal(t, 0, rawCount(t, role.DB), "no tenant: no row")
}
