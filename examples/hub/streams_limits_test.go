package main

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening/migrate"
)

// eventData returns the JSON data of an SSE frame.
func eventData(t *testing.T, frame string) map[string]any {
	t.Helper()
	for _, line := range strings.Split(frame, "\n") {
		if d, ok := strings.CutPrefix(line, "data: "); ok {
			var m map[string]any
			require.NoError(t, json.Unmarshal([]byte(d), &m), frame)
			return m
		}
	}
	t.Fatalf("no data in %q", frame)
	return nil
}

// TestStreamEventsCarryNoAdminNotes: a user's stream receives flag toggles
// (global and for its tenant) and quota changes with what the user may see,
// never who made the change nor the admin's reason; the admin endpoints
// keep both.
func TestStreamEventsCarryNoAdminNotes(t *testing.T) {
	a, url := newTestApp(t)
	root := mintToken(t, a, "root", "ops", true)
	s := openHubSSE(t, url+"/api/v1/streams/events?access_token="+mintToken(t, a, "alice", "acme", false))
	s.until(t, "event: hello")

	resp, b := call(t, "POST", url+"/api/v1/feature-flags/preview.snapshots/toggle", root, `{"enabled":true,"reason":"secret plan B"}`)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
	assert.Equal(t, map[string]any{"flag": "preview.snapshots", "scope": "global", "tenant_id": nil, "new_value": true},
		eventData(t, s.until(t, "event: flag.toggled")))
	resp, b = call(t, "POST", url+"/api/v1/feature-flags/llm.streaming/toggle", root, `{"enabled":true,"tenant_id":"acme","reason":"acme pays"}`)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
	assert.Equal(t, map[string]any{"flag": "llm.streaming", "scope": "tenant", "tenant_id": "acme", "new_value": true},
		eventData(t, s.until(t, "event: flag.toggled")))
	resp, b = call(t, "POST", url+"/api/v1/tenancy/quotas/acme/update", root, `{"active_previews":3,"reason":"churn risk"}`)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
	q := eventData(t, s.until(t, "event: quota.changed"))
	assert.Equal(t, "acme", q["tenant_id"])
	assert.EqualValues(t, 3, q["limits"].(map[string]any)["active_previews"])
	for _, k := range []string{"changed_by", "reason"} {
		assert.NotContains(t, q, k)
	}

	// The admin audits keep them.
	_, b = call(t, "GET", url+"/api/v1/feature-flags/audit?flag=preview.snapshots", root, "")
	assert.Contains(t, string(b), `"reason":"secret plan B"`)
	_, b = call(t, "GET", url+"/api/v1/tenancy/audit?tenant_id=acme", root, "")
	assert.Contains(t, string(b), `"reason":"churn risk"`)
}

// TestStreamsPerUserLimit: by default a subject holds at most 20 open
// streams; the 21st gets 429 stream_limit_exceeded. Another user is not
// affected, and the limit is configurable.
func TestStreamsPerUserLimit(t *testing.T) {
	a, url := newTestApp(t)
	alice := mintToken(t, a, "alice", "acme", false)
	for i := range defaultMaxStreamsPerUser {
		s := openHubSSE(t, url+"/api/v1/streams/events?access_token="+alice)
		require.Equal(t, http.StatusOK, s.resp.StatusCode, "stream %d", i+1)
	}
	resp, b := call(t, "GET", url+"/api/v1/streams/events?access_token="+alice, "", "")
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode, string(b))
	p := decodeBody(t, b)
	assert.Equal(t, "stream_limit_exceeded", p["reason"])
	assert.Equal(t, "user", p["scope"])
	assert.EqualValues(t, 20, p["limit"])
	s := openHubSSE(t, url+"/api/v1/streams/events?access_token="+mintToken(t, a, "bob", "acme", false))
	assert.Equal(t, http.StatusOK, s.resp.StatusCode)

	t.Setenv(envMaxStreamsPerUser, "2")
	a2, url2 := newTestApp(t)
	bob := mintToken(t, a2, "bob", "acme", false)
	openHubSSE(t, url2+"/api/v1/streams/events?access_token="+bob)
	openHubSSE(t, url2+"/api/v1/streams/events?access_token="+bob)
	resp, b = call(t, "GET", url2+"/api/v1/streams/events?access_token="+bob, "", "")
	assert.Equal(t, http.StatusTooManyRequests, resp.StatusCode, string(b))

	t.Setenv(envMaxStreamsPerUser, "many")
	cfg := config{DatabaseURL: "sqlite:///" + filepath.Join(t.TempDir(), "hub.db"), AuthSecret: []byte(testAuthSecret), Migrations: migrate.DefaultPolicy()}
	cfg.DBPath, _ = sqlitePath(cfg.DatabaseURL)
	_, err := newApp(t.Context(), cfg, slog.New(slog.DiscardHandler))
	require.Error(t, err)
	assert.Contains(t, err.Error(), envMaxStreamsPerUser)
}

// TestStreamsRevocationSurvivesRestart: a token revoked before a restart
// is refused after it, in SQLite mode (the same database file), in Redis
// mode (the same Redis) and on Postgres (the same schema).
func TestStreamsRevocationSurvivesRestart(t *testing.T) {
	modes := map[string]func(t *testing.T) func(*config){
		"sqlite": func(t *testing.T) func(*config) {
			dbURL := "sqlite:///" + filepath.Join(t.TempDir(), "hub.db")
			return func(c *config) { c.DatabaseURL = dbURL; c.DBPath, _ = sqlitePath(dbURL) }
		},
		"redis": func(t *testing.T) func(*config) {
			srv := testRedis(t)
			t.Setenv(envRedisPrefix, srv.Prefix)
			return func(c *config) { c.RedisURL = srv.URL; c.RedisPrefix = srv.Prefix }
		},
		"postgres": func(t *testing.T) func(*config) { return withPostgres(testPostgres(t)) },
	}
	for name, mode := range modes {
		t.Run(name, func(t *testing.T) {
			same := mode(t)
			a, urlA := newTestApp(t, same)
			alice := mintToken(t, a, "alice", "acme", false)
			resp, b := call(t, "POST", urlA+"/api/v1/streaming/revoke", mintToken(t, a, "root", "ops", true), `{"user_id":"alice"}`)
			require.Equal(t, http.StatusOK, resp.StatusCode, string(b))

			_, urlB := newTestApp(t, same) // the process after a restart
			resp, b = call(t, "GET", urlB+"/api/v1/streams/events?access_token="+alice, "", "")
			assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, string(b))
			assert.Equal(t, "token_revoked", decodeBody(t, b)["reason"])
		})
	}
}

// TestStreamsRevokeStoreFailure: when the revocation cannot be stored the
// admin is told (503 revocation_store_failed with the local drop count).
func TestStreamsRevokeStoreFailure(t *testing.T) {
	a, url := newTestApp(t)
	root := mintToken(t, a, "root", "ops", true)
	_, err := a.db.Exec(`DROP TABLE hardening_stream_revocations`)
	require.NoError(t, err)
	resp, b := call(t, "POST", url+"/api/v1/streaming/revoke", root, `{"user_id":"alice"}`)
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, string(b))
	p := decodeBody(t, b)
	assert.Equal(t, "revocation_store_failed", p["reason"])
	assert.EqualValues(t, 0, p["dropped"])
}

// TestStreamsRevocationsUnavailable: a hub that cannot load its stored
// revocations still starts, refuses streams with 503 auth_unavailable (fail
// closed) and accepts them once a load succeeds.
func TestStreamsRevocationsUnavailable(t *testing.T) {
	dbURL := "sqlite:///" + filepath.Join(t.TempDir(), "hub.db")
	same := func(c *config) { c.DatabaseURL = dbURL; c.DBPath, _ = sqlitePath(dbURL) }
	a, _ := newTestApp(t, same)
	_, err := a.db.Exec(`ALTER TABLE hardening_stream_revocations RENAME TO moved_away`)
	require.NoError(t, err)

	b, url := newTestApp(t, same)
	tok := mintToken(t, b, "alice", "acme", false)
	resp, body := call(t, "GET", url+"/api/v1/streams/events?access_token="+tok, "", "")
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, string(body))
	assert.Equal(t, "auth_unavailable", decodeBody(t, body)["reason"])

	_, err = a.db.Exec(`ALTER TABLE moved_away RENAME TO hardening_stream_revocations`)
	require.NoError(t, err)
	s := openHubSSE(t, url+"/api/v1/streams/events?access_token="+tok)
	assert.Equal(t, http.StatusOK, s.resp.StatusCode)
}
