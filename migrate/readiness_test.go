package migrate_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening/internal/testenv"
	"github.com/systembuilderhub/hardening/migrate"
)

func readyz(t *testing.T, h http.Handler, query string) (int, map[string]any) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz"+query, nil))
	var body map[string]any
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body), rec.Body.String())
	if rec.Code != 200 {
		assert.Equal(t, "application/problem+json", rec.Header().Get("Content-Type"))
	}
	return rec.Code, body
}

func handler(t *testing.T, m *migrate.Migrator, opts ...migrate.ReadinessOption) http.Handler {
	t.Helper()
	h, err := m.ReadinessHandler(opts...)
	require.NoError(t, err)
	return h
}

func TestReadiness(t *testing.T) {
	ctx := context.Background()
	set := migrate.WithSet("app", appSet(twoMigrations))

	t.Run("pending then at head, verdict cached", func(t *testing.T) {
		db := testenv.OpenSQLite(t, filepath.Join(t.TempDir(), "a.db"))
		m, err := migrate.New(db, set)
		require.NoError(t, err)
		h := handler(t, m, migrate.CacheFor(time.Hour))
		code, body := readyz(t, h, "?verbose")
		assert.Equal(t, 503, code)
		assert.Equal(t, migrate.ReasonPending, body["reason"])
		assert.NotEmpty(t, body["checks"])
		_, err = m.Up(ctx)
		require.NoError(t, err)
		code, _ = readyz(t, h, "")
		assert.Equal(t, 503, code, "the verdict is cached")
		fresh := handler(t, m, migrate.CacheFor(0))
		code, body = readyz(t, fresh, "")
		assert.Equal(t, 200, code)
		assert.Equal(t, "ready", body["status"])
		assert.NotContains(t, body, "checks")
	})
	t.Run("ahead", func(t *testing.T) {
		db := testenv.OpenSQLite(t, filepath.Join(t.TempDir(), "a.db"))
		_, err := migrate.Up(ctx, db, set)
		require.NoError(t, err)
		m, err := migrate.New(db)
		require.NoError(t, err)
		code, body := readyz(t, handler(t, m), "")
		assert.Equal(t, 503, code)
		assert.Equal(t, migrate.ReasonAhead, body["reason"])
	})
	t.Run("checksum mismatch", func(t *testing.T) {
		db := testenv.OpenSQLite(t, filepath.Join(t.TempDir(), "a.db"))
		_, err := migrate.Up(ctx, db, set)
		require.NoError(t, err)
		edited := map[string]string{"0001_widgets.sql": "-- edited\n" + twoMigrations["0001_widgets.sql"], "0002_gadgets.sql": twoMigrations["0002_gadgets.sql"]}
		m, err := migrate.New(db, migrate.WithSet("app", appSet(edited)))
		require.NoError(t, err)
		code, body := readyz(t, handler(t, m), "")
		assert.Equal(t, 503, code)
		assert.Equal(t, migrate.ReasonChecksumMismatch, body["reason"])
	})
	t.Run("db unavailable", func(t *testing.T) {
		db := testenv.OpenSQLite(t, filepath.Join(t.TempDir(), "a.db"))
		m, err := migrate.New(db)
		require.NoError(t, err)
		require.NoError(t, db.Close())
		code, body := readyz(t, handler(t, m), "")
		assert.Equal(t, 503, code)
		assert.Equal(t, migrate.ReasonDBUnavailable, body["reason"])
	})
	t.Run("extra check", func(t *testing.T) {
		db := testenv.SQLite(t)
		m, err := migrate.New(db)
		require.NoError(t, err)
		h := handler(t, m, migrate.WithCheck(migrate.Check{Name: "redis", Reason: "redis_unavailable", Func: func(context.Context) error { return errors.New("down") }}))
		code, body := readyz(t, h, "?verbose")
		assert.Equal(t, 503, code)
		assert.Equal(t, "redis_unavailable", body["reason"])
	})
}
