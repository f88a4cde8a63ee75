package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening/migrate"
)

// TestSchemaPendingThenApplied: a hub started on an empty database with
// MIGRATIONS_AUTO_APPLY=false starts; /livez, /readyz (503
// schema_pending), /metrics, /openapi.json and / answer as documented and
// every documented operation under /api/ and /preview/ answers 503
// schema_pending (each exchange checked against openapi.json). Once
// another process applies the migrations, the same hub becomes ready and
// serves the features, without a restart.
func TestSchemaPendingThenApplied(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		runSchemaPendingThenApplied(t, func(t *testing.T, a *app) *sqlx.DB { return openTestDB(t, a.cfg.DBPath) })
	})
	t.Run("postgres", func(t *testing.T) {
		pg := testPostgres(t)
		runSchemaPendingThenApplied(t, func(*testing.T, *app) *sqlx.DB { return pg.DB }, withPostgres(pg))
	})
}

// runSchemaPendingThenApplied is TestSchemaPendingThenApplied on one
// database; other opens the database as another process would.
func runSchemaPendingThenApplied(t *testing.T, other func(*testing.T, *app) *sqlx.DB, mods ...func(*config)) {
	a, base := newTestApp(t, append(mods, func(c *config) { c.Migrations.DisableAutoApply = true })...)
	require.NotNil(t, a.late, "the hub does not wait for its schema")
	tok := testToken(t, "root", "acme", true)

	resp, b := call(t, "GET", base+"/readyz", "", "")
	assert.Equal(t, 503, resp.StatusCode)
	assert.Equal(t, migrate.ReasonPending, decodeBody(t, b)["reason"])
	resp, _ = call(t, "GET", base+"/livez", "", "")
	assert.Equal(t, 200, resp.StatusCode)
	resp, _ = call(t, "GET", base+"/no/such/thing", "", "")
	assert.Equal(t, 404, resp.StatusCode)

	client := &http.Client{Transport: contractTransport(t, nil), Timeout: 10 * time.Second, CheckRedirect: noFollow}
	for key, op := range docOperations(loadOpenAPI(t)) {
		method, path, _ := strings.Cut(key, " ")
		path = strings.NewReplacer("{", "", "}", "").Replace(path)
		var body io.Reader
		if op.RequestBody != nil {
			body = strings.NewReader("{}")
		}
		req, err := http.NewRequest(method, base+path, body)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		require.NoError(t, err, key)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch {
		case strings.HasPrefix(path, "/api/"), strings.HasPrefix(path, "/preview/"):
			assert.Equal(t, 503, resp.StatusCode, "%s: %s", key, b)
			assert.Contains(t, string(b), `"reason":"schema_pending"`, key)
		case path == "/readyz":
			assert.Equal(t, 503, resp.StatusCode, key)
		default:
			assert.Equal(t, 200, resp.StatusCode, "%s: %s", key, b)
		}
	}

	// Another process applies the migrations.
	db := other(t, a)
	m, err := migratorFor(db, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	_, err = m.Up(context.Background())
	require.NoError(t, err)

	eventually(t, 15*time.Second, "the hub to become ready", func() (bool, string) {
		resp, b := call(t, "GET", base+"/readyz", "", "")
		return resp.StatusCode == 200, string(b)
	})
	resp, b = call(t, "GET", base+"/api/v1/whoami", tok, "")
	assert.Equal(t, 200, resp.StatusCode, string(b))
	resp, b = call(t, "GET", base+"/api/v1/feature-flags", tok, "")
	assert.Equal(t, 200, resp.StatusCode, string(b))
	resp, b = call(t, "POST", base+"/api/v1/previews", tok, `{"system_id":"s1"}`, "Idempotency-Key", "k1")
	assert.Equal(t, 201, resp.StatusCode, string(b))
}

// TestSchemaPendingCloseStopsTheWait: closing a hub that still waits for
// its schema stops the wait (goleak in TestMain checks nothing is left).
func TestSchemaPendingCloseStopsTheWait(t *testing.T) {
	a, base := newTestApp(t, func(c *config) { c.Migrations.DisableAutoApply = true })
	resp, _ := call(t, "GET", base+"/api/v1/whoami", "", "")
	assert.Equal(t, 503, resp.StatusCode)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, a.Close(ctx))
}

// TestSchemaPendingSetupFailure: when the features cannot be set up once
// the schema is at head (here the development secret's table is missing
// although its migration is recorded), the error reaches setupFailed, on
// which serve stops the hub as a failed startup would.
func TestSchemaPendingSetupFailure(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hub.db")
	db := openTestDB(t, path)
	m, err := migratorFor(db, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	_, err = m.Up(context.Background())
	require.NoError(t, err)
	var rows []map[string]any
	r, err := db.Queryx(`SELECT * FROM hardening_schema_migrations WHERE set_name = 'hub'`)
	require.NoError(t, err)
	for r.Next() {
		row := map[string]any{}
		require.NoError(t, r.MapScan(row))
		rows = append(rows, row)
	}
	require.NoError(t, r.Close())
	require.NotEmpty(t, rows)
	_, err = db.Exec(`DELETE FROM hardening_schema_migrations WHERE set_name = 'hub'; DROP TABLE hub_settings`)
	require.NoError(t, err)

	a, _ := newTestApp(t, func(c *config) {
		c.DatabaseURL, c.DBPath, c.AuthSecret = "sqlite:///"+path, path, nil
		c.Migrations.DisableAutoApply = true
	})
	require.NotNil(t, a.late)
	for _, row := range rows { // the hub's migration looks applied again; its table is gone
		_, err := db.NamedExec(`INSERT INTO hardening_schema_migrations (set_name, version, name, checksum, applied_at) VALUES (:set_name, :version, :name, :checksum, :applied_at)`, row)
		require.NoError(t, err)
	}
	select {
	case err := <-a.setupFailed():
		assert.ErrorContains(t, err, "hub_settings")
	case <-time.After(15 * time.Second):
		t.Fatal("no setup failure reported")
	}
}
