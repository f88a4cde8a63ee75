package migrate_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening"
	"github.com/systembuilderhub/hardening/internal/testenv"
	"github.com/systembuilderhub/hardening/migrate"
)

// Invalid option values are reported by the constructor, naming the option.
func TestConstructorsReportInvalidOptions(t *testing.T) {
	db := testenv.SQLite(t)
	for name, opt := range map[string]migrate.Option{
		"WithClock":   migrate.WithClock(nil),
		"WithLockTTL": migrate.WithLockTTL(0),
	} {
		_, err := migrate.New(db, opt)
		require.Error(t, err, name)
		assert.Contains(t, err.Error(), name)
	}
	_, err := migrate.New(db, nil, migrate.WithLockTTL(time.Minute))
	require.NoError(t, err, "a nil option is ignored")

	m, err := migrate.New(db)
	require.NoError(t, err)
	ok := func(context.Context) error { return nil }
	for name, opt := range map[string]migrate.ReadinessOption{
		"CacheFor":         migrate.CacheFor(-time.Second),
		"CheckTimeout":     migrate.CheckTimeout(0),
		"WithClock":        migrate.WithClock(nil),
		"WithErrorHandler": migrate.WithErrorHandler(nil),
		"WithCheck":        migrate.WithCheck(migrate.Check{Func: ok}),
	} {
		h, err := m.ReadinessHandler(opt)
		require.Error(t, err, name)
		assert.Nil(t, h)
		assert.Contains(t, err.Error(), name)
	}
	_, err = m.ReadinessHandler(migrate.WithCheck(migrate.Check{Name: "redis"}))
	require.Error(t, err, "a check without a Func")
	_, err = m.ReadinessHandler(nil, migrate.CacheFor(0))
	require.NoError(t, err, "a nil option is ignored; CacheFor(0) is valid")
}

// The default error handler writes today's bytes; a custom one receives a
// *NotReadyError that carries the cause.
func TestReadinessErrorHandler(t *testing.T) {
	ctx := context.Background()
	db := testenv.OpenSQLite(t, filepath.Join(t.TempDir(), "a.db"))
	m, err := migrate.New(db, migrate.WithSet("app", appSet(twoMigrations)))
	require.NoError(t, err)

	def := handler(t, m)
	rec := httptest.NewRecorder()
	def.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	assert.Equal(t, 503, rec.Code)
	assert.Equal(t, `{"detail":"the database schema is not at this binary's head; see the service log for remediation",`+
		`"instance":"/readyz","reason":"schema_pending","status":503,"title":"Service not ready",`+
		`"type":"https://github.com/systembuilderhub/hardening/blob/main/docs/problems.md#schema_pending"}`+"\n", rec.Body.String())

	var got error
	custom := handler(t, m, migrate.WithErrorHandler(func(w http.ResponseWriter, r *http.Request, err error) {
		got = err
		w.WriteHeader(http.StatusTeapot)
	}), migrate.CacheFor(0), migrate.WithCheck(migrate.Check{Name: "cache", Func: func(context.Context) error { return errors.New("cache down") }}))
	rec = httptest.NewRecorder()
	custom.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz?verbose", nil))
	assert.Equal(t, http.StatusTeapot, rec.Code)
	var nr *migrate.NotReadyError
	require.ErrorAs(t, got, &nr)
	assert.Equal(t, migrate.ReasonPending, nr.Reason)
	assert.ErrorIs(t, got, migrate.ErrPending)
	assert.Len(t, nr.Checks, 4, "database, schema:kit, schema:app, then cache")
	var he hardening.Error
	require.ErrorAs(t, got, &he)
	assert.Equal(t, 503, he.Problem().Status)
	assert.Contains(t, he.Problem().Extensions, "checks")

	_, err = m.Up(ctx)
	require.NoError(t, err)
	rec = httptest.NewRecorder()
	custom.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	require.ErrorAs(t, got, &nr)
	assert.Equal(t, migrate.ReasonDependencyUnavailable, nr.Reason)
	assert.Nil(t, nr.Checks, "checks only when verbose")
	assert.ErrorContains(t, got, "cache down")
	assert.NotContains(t, nr.Problem().Detail, "cache down", "the cause stays out of the response")

	require.NoError(t, db.Close())
	custom = handler(t, m, migrate.WithErrorHandler(func(w http.ResponseWriter, r *http.Request, err error) {
		got = err
		hardening.WriteError(w, r, err)
	}))
	rec = httptest.NewRecorder()
	custom.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	assert.Equal(t, 503, rec.Code)
	assert.ErrorIs(t, got, migrate.ErrDBUnavailable)
	assert.Contains(t, rec.Body.String(), `"reason":"db_unavailable"`)
}

// The verdict's age is measured on the injected clock.
func TestReadinessCacheUsesClock(t *testing.T) {
	db := testenv.OpenSQLite(t, filepath.Join(t.TempDir(), "a.db"))
	m, err := migrate.New(db, migrate.WithSet("app", appSet(twoMigrations)))
	require.NoError(t, err)
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	h := handler(t, m, migrate.CacheFor(time.Minute), migrate.WithClock(func() time.Time { return now }))
	code, _ := readyz(t, h, "")
	assert.Equal(t, 503, code)
	_, err = m.Up(context.Background())
	require.NoError(t, err)
	now = now.Add(59 * time.Second)
	code, _ = readyz(t, h, "")
	assert.Equal(t, 503, code, "still cached")
	now = now.Add(time.Second)
	code, _ = readyz(t, h, "")
	assert.Equal(t, 200, code, "expired on the injected clock")
}
