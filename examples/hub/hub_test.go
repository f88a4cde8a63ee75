package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening/migrate"
)

const testAuthSecret = "test-secret-0123456789abcdef"

// newTestApp starts the hub on a fresh SQLite file in t.TempDir() behind an
// httptest.Server. mods may change the config first (for example to set
// RedisURL). Everything is closed at cleanup.
func newTestApp(t *testing.T, mods ...func(*config)) (*app, string) {
	t.Helper()
	cfg := config{
		Addr:        "127.0.0.1:0",
		DatabaseURL: "sqlite:///" + filepath.Join(t.TempDir(), "hub.db"),
		AuthSecret:  []byte(testAuthSecret),
		// Tests sharing a Redis set HUB_REDIS_PREFIX to their own prefix.
		RedisPrefix: envOr(envRedisPrefix, defaultRedisPrefix),
		Migrations:  migrate.DefaultPolicy(),
	}
	cfg.DBPath, _ = sqlitePath(cfg.DatabaseURL)
	for _, m := range mods {
		m(&cfg)
	}
	a, err := newApp(context.Background(), cfg, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	srv := httptest.NewServer(a.handler())
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		assert.NoError(t, a.Close(ctx))
	})
	markContractServer(t, srv.URL) // call checks every exchange against openapi.json
	return a, srv.URL
}

// mintToken returns a hub bearer token for sub in tenant, valid for an hour.
func mintToken(t *testing.T, a *app, sub, tenant string, isAdmin bool) string {
	t.Helper()
	var roles []string
	if isAdmin {
		roles = []string{"admin"}
	}
	tok, err := a.auth.mint(sub, tenant, roles, time.Hour)
	require.NoError(t, err)
	return tok
}

// call sends a request with an optional bearer token and JSON body and
// returns the response with its body read. Exchanges with a hub started by
// newTestApp are checked against openapi.json (checkContract).
func call(t *testing.T, method, url, token, body string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	require.NoError(t, err)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if isContractServer(req.URL) {
		checkContract(t, req, []byte(body), resp, b)
	}
	return resp, b
}

func decodeBody(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m), string(b))
	return m
}

func TestCoreEndpoints(t *testing.T) {
	_, url := newTestApp(t)
	resp, _ := call(t, "GET", url+"/livez", "", "")
	assert.Equal(t, 200, resp.StatusCode)

	resp, b := call(t, "GET", url+"/readyz?verbose", "", "")
	assert.Equal(t, 200, resp.StatusCode, string(b))
	body := decodeBody(t, b)
	assert.Equal(t, "ready", body["status"])
	assert.NotEmpty(t, body["checks"])

	resp, b = call(t, "GET", url+"/metrics", "", "")
	assert.Equal(t, 200, resp.StatusCode)
	assert.Contains(t, string(b), "go_goroutines")

	resp, b = call(t, "GET", url+"/no/such/thing", "", "")
	assert.Equal(t, 404, resp.StatusCode)
	assert.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"))
	assert.Equal(t, "not_found", decodeBody(t, b)["reason"])
}

func TestAuth(t *testing.T) {
	a, url := newTestApp(t)
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := principalFrom(r.Context())
		writeJSON(w, 200, map[string]any{"user": p.UserID, "tenant": p.TenantID})
	})
	srv := httptest.NewServer(a.requireAccess(user, ok))
	defer srv.Close()
	adm := httptest.NewServer(a.requireAccess(admin, ok))
	defer adm.Close()

	expired, err := a.auth.mint("alice", "acme", nil, -time.Hour)
	require.NoError(t, err)
	other := &authenticator{secret: []byte("another-secret-0123456789"), now: time.Now}
	forged, err := other.mint("alice", "acme", []string{"admin"}, time.Hour)
	require.NoError(t, err)
	noTenant, err := a.auth.mint("alice", "", nil, time.Hour)
	require.NoError(t, err)

	tests := []struct {
		name   string
		url    string
		token  string
		status int
	}{
		{"missing", srv.URL, "", 401},
		{"garbage", srv.URL, "not.a.jwt", 401},
		{"expired", srv.URL, expired, 401},
		{"wrong key", srv.URL, forged, 401},
		{"no tenant", srv.URL, noTenant, 401},
		{"user ok", srv.URL, mintToken(t, a, "alice", "acme", false), 200},
		{"admin route as user", adm.URL, mintToken(t, a, "alice", "acme", false), 403},
		{"admin route as admin", adm.URL, mintToken(t, a, "root", "acme", true), 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, b := call(t, "GET", tc.url, tc.token, "")
			assert.Equal(t, tc.status, resp.StatusCode, string(b))
			if tc.status == 401 {
				assert.Contains(t, resp.Header.Get("WWW-Authenticate"), "Bearer")
				assert.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"))
			}
		})
	}
	_ = url
}

func TestDecodeJSON(t *testing.T) {
	type body struct {
		Name string `json:"name"`
		N    int    `json:"n"`
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b body
		if !decodeJSON(w, r, &b) {
			return
		}
		writeJSON(w, 200, b)
	})
	tests := []struct {
		name   string
		body   string
		ctype  string
		status int
	}{
		{"ok", `{"name":"x","n":1}`, "application/json", 200},
		{"empty", ``, "application/json", 400},
		{"malformed", `{"name":`, "application/json", 400},
		{"wrong type", `{"n":"one"}`, "application/json", 400},
		{"unknown field", `{"other":1}`, "application/json", 400},
		{"trailing", `{"n":1}{"n":2}`, "application/json", 400},
		{"invalid utf8", "{\"name\":\"\xff\xfe\"}", "application/json", 400},
		{"too large", `{"name":"` + strings.Repeat("a", maxBodyBytes) + `"}`, "application/json", 413},
		{"wrong media type", `{"n":1}`, "text/plain", 415},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest("POST", "/", strings.NewReader(tc.body))
			req.Header.Set("Content-Type", tc.ctype)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			assert.Equal(t, tc.status, rec.Code, rec.Body.String())
			if tc.status != 200 {
				assert.Equal(t, "application/problem+json", rec.Header().Get("Content-Type"))
			}
		})
	}
}

func TestSQLitePath(t *testing.T) {
	tests := []struct {
		in, want string
		err      bool
	}{
		{"sqlite:///hub.db", "hub.db", false},
		{"sqlite:///data/hub.db", "data/hub.db", false},
		{"sqlite:////var/lib/hub.db", "/var/lib/hub.db", false},
		{"postgres://x/y", "", true},
		{"sqlite://host/hub.db", "", true},
		{"sqlite:///", "", true},
		{"::::", "", true},
	}
	for _, tc := range tests {
		got, err := sqlitePath(tc.in)
		if tc.err {
			assert.Error(t, err, tc.in)
			continue
		}
		assert.NoError(t, err, tc.in)
		assert.Equal(t, tc.want, got)
	}
}

func TestPreviewRecords(t *testing.T) {
	a, _ := newTestApp(t)
	ctx := context.Background()
	rec := previewRecord{ID: newID("pv_"), TenantID: "acme", SystemID: "s1", DevicePreset: "desktop", CreatedBy: "alice", CreatedAt: time.Now()}
	require.NoError(t, a.createPreview(ctx, rec))
	got, ok, err := a.lookupPreview(ctx, rec.ID)
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, "acme", got.TenantID)
	deleted, err := a.deletePreview(ctx, rec.ID)
	require.NoError(t, err)
	assert.True(t, deleted)
	_, ok, err = a.lookupPreview(ctx, rec.ID)
	require.NoError(t, err)
	assert.False(t, ok)
	deleted, err = a.deletePreview(ctx, rec.ID)
	require.NoError(t, err)
	assert.False(t, deleted)
}

func TestPublishFansOut(t *testing.T) {
	a, _ := newTestApp(t)
	var got []string
	a.eventSinks = append(a.eventSinks, func(tenant, typ string, _ any) { got = append(got, tenant+":"+typ) })
	a.publish("acme", "preview.created", nil)
	assert.Equal(t, []string{"acme:preview.created"}, got)
}

func TestDemoPage(t *testing.T) {
	_, url := newTestApp(t)
	resp, b := call(t, "GET", url+"/", "", "")
	assert.Equal(t, 200, resp.StatusCode)
	assert.Contains(t, resp.Header.Get("Content-Type"), "text/html")
	assert.Contains(t, resp.Header.Get("Content-Security-Policy"), "script-src 'sha256-")
	assert.Contains(t, string(b), "EventSource")
}
