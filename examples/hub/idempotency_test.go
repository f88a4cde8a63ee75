package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening/idempotency"
	"github.com/systembuilderhub/hardening/migrate"
)

var echoCountRE = regexp.MustCompile(`(?m)^hub_echo_executions_total (\d+)$`)

func echoExecutions(t *testing.T, url string) int {
	t.Helper()
	_, b := call(t, "GET", url+"/metrics", "", "")
	m := echoCountRE.FindSubmatch(b)
	require.NotNil(t, m, "hub_echo_executions_total missing from /metrics")
	n, err := strconv.Atoi(string(m[1]))
	require.NoError(t, err)
	return n
}

func TestEchoIsIdempotent(t *testing.T) {
	a, url := newTestApp(t)
	alice := mintToken(t, a, "alice", "acme", false)
	bob := mintToken(t, a, "bob", "globex", false)

	resp, b := call(t, "POST", url+"/api/v1/echo", alice, `{"msg":"hi"}`, "Idempotency-Key", `"k-1"`)
	require.Equal(t, http.StatusCreated, resp.StatusCode, string(b))
	first := decodeBody(t, b)
	assert.NotEmpty(t, first["id"])
	assert.Equal(t, "hi", first["msg"])
	assert.Equal(t, map[string]any{"msg": "hi"}, first["echo"])
	assert.Empty(t, resp.Header.Get("Idempotent-Replay"))

	resp, b = call(t, "POST", url+"/api/v1/echo", alice, `{"msg":"hi"}`, "Idempotency-Key", `"k-1"`)
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	assert.Equal(t, "true", resp.Header.Get("Idempotent-Replay"))
	assert.Equal(t, "no-store", resp.Header.Get("Cache-Control"), "a replay is as uncacheable as the original")
	assert.Equal(t, first["id"], decodeBody(t, b)["id"])
	assert.Equal(t, 1, echoExecutions(t, url))

	resp, _ = call(t, "POST", url+"/api/v1/echo", alice, `{"msg":"other"}`, "Idempotency-Key", `"k-1"`)
	assert.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode)
	assert.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"))

	// Another tenant's same key is another record.
	resp, b = call(t, "POST", url+"/api/v1/echo", bob, `{"msg":"hi"}`, "Idempotency-Key", `"k-1"`)
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	assert.NotEqual(t, first["id"], decodeBody(t, b)["id"])
	assert.Empty(t, resp.Header.Get("Idempotent-Replay"))

	// Without a key every call runs; a malformed key is 400; no token is 401.
	call(t, "POST", url+"/api/v1/echo", alice, `{"msg":"hi"}`)
	call(t, "POST", url+"/api/v1/echo", alice, `{"msg":"hi"}`)
	assert.Equal(t, 4, echoExecutions(t, url))
	resp, _ = call(t, "POST", url+"/api/v1/echo", alice, `{}`, "Idempotency-Key", `"bad key"`)
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	resp, _ = call(t, "POST", url+"/api/v1/echo", "", `{}`, "Idempotency-Key", "k-2")
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)

	_, b = call(t, "GET", url+"/metrics", "", "")
	assert.Contains(t, string(b), `hardening_idempotency_requests_total{outcome="replay"} 1`)
}

func TestEchoConcurrentRetries(t *testing.T) {
	a, url := newTestApp(t)
	tok := mintToken(t, a, "alice", "acme", false)
	var wg sync.WaitGroup
	codes := make([]int, 16)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, _ := call(t, "POST", url+"/api/v1/echo", tok, `{"n":1}`, "Idempotency-Key", "same")
			codes[i] = resp.StatusCode
		}()
	}
	wg.Wait()
	for _, c := range codes {
		assert.Contains(t, []int{http.StatusCreated, http.StatusConflict}, c)
	}
	assert.Equal(t, 1, echoExecutions(t, url))
}

func TestIdempotencyStatus(t *testing.T) {
	a, url := newTestApp(t)
	user := mintToken(t, a, "alice", "acme", false)
	admin := mintToken(t, a, "root", "acme", true)
	resp, _ := call(t, "GET", url+"/api/v1/idempotency/status", user, "")
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)

	for i := range 3 {
		call(t, "POST", url+"/api/v1/echo", user, `{}`, "Idempotency-Key", fmt.Sprint("s-", i))
	}
	resp, b := call(t, "GET", url+"/api/v1/idempotency/status", admin, "")
	require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
	st := decodeBody(t, b)
	assert.Equal(t, "sqlite", st["store"])
	assert.Equal(t, float64(86400), st["ttl_seconds"])
	assert.Equal(t, float64(30), st["lock_timeout_seconds"])
	assert.Equal(t, float64(3), st["keys"])
	assert.Equal(t, float64(0), st["in_flight"])
	assert.Contains(t, st, "last_sweep_at")
	assert.NotNil(t, st["last_sweep_at"], "the sweeper ran once at start")
	assert.Equal(t, float64(0), st["last_sweep_deleted"])
	assert.Len(t, st, 7)
}

func TestIdempotencyOnRedis(t *testing.T) {
	// A private miniredis: the hub's keys use the store's default prefix.
	mr := miniredis.RunT(t)
	a, url := newTestApp(t, func(c *config) { c.RedisURL = "redis://" + mr.Addr() })
	tok := mintToken(t, a, "alice", "acme", true)
	resp, b := call(t, "POST", url+"/api/v1/echo", tok, `{"x":1}`, "Idempotency-Key", "r-1")
	require.Equal(t, http.StatusCreated, resp.StatusCode, string(b))
	resp, b2 := call(t, "POST", url+"/api/v1/echo", tok, `{"x":1}`, "Idempotency-Key", "r-1")
	assert.Equal(t, "true", resp.Header.Get("Idempotent-Replay"))
	assert.Equal(t, decodeBody(t, b)["id"], decodeBody(t, b2)["id"])
	assert.Equal(t, 1, echoExecutions(t, url))

	_, b = call(t, "GET", url+"/api/v1/idempotency/status", tok, "")
	st := decodeBody(t, b)
	assert.Equal(t, "redis", st["store"])
	assert.Equal(t, float64(1), st["keys"])
	assert.Nil(t, st["last_sweep_at"], "Redis expires keys itself")
}

// TestQuotaRefusalIsNotReplayed: a 429 from the active-previews quota does
// not consume the Idempotency-Key; the same request retried once a slot is
// free creates the preview, and only then is it replayed.
func TestQuotaRefusalIsNotReplayed(t *testing.T) {
	a, url := newTestApp(t)
	admin := mintToken(t, a, "root", "acme", true)
	alice := mintToken(t, a, "alice", "acme", false)
	resp, b := call(t, "POST", url+"/api/v1/tenancy/quotas/acme/update", admin, `{"active_previews":1,"reason":"test"}`)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(b))

	resp, b = call(t, "POST", url+"/api/v1/previews", alice, `{"system_id":"s1"}`)
	require.Equal(t, http.StatusCreated, resp.StatusCode, string(b))
	held := decodeBody(t, b)["preview_id"].(string)

	const body = `{"system_id":"s2"}`
	resp, b = call(t, "POST", url+"/api/v1/previews", alice, body, "Idempotency-Key", "retry-me")
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode, string(b))

	resp, _ = call(t, "DELETE", url+"/api/v1/previews/"+held, alice, "")
	require.Equal(t, http.StatusNoContent, resp.StatusCode)

	resp, b = call(t, "POST", url+"/api/v1/previews", alice, body, "Idempotency-Key", "retry-me")
	require.Equal(t, http.StatusCreated, resp.StatusCode, "the refusal was not stored: %s", b)
	assert.Empty(t, resp.Header.Get("Idempotent-Replay"))
	created := decodeBody(t, b)["preview_id"]

	resp, b = call(t, "POST", url+"/api/v1/previews", alice, body, "Idempotency-Key", "retry-me")
	require.Equal(t, http.StatusCreated, resp.StatusCode, string(b))
	assert.Equal(t, "true", resp.Header.Get("Idempotent-Replay"))
	assert.Equal(t, created, decodeBody(t, b)["preview_id"])
}

// TestSlowEchoKeepsItsKey: an echo that runs ten lock timeouts
// (HUB_ECHO_DELAY) keeps its key: every retry meanwhile is 409, then the
// replay; it runs once. (Ten, not three: under -race the first request and
// the /metrics scrape that sees it start can take over a second, and the
// retries must still find the echo running.)
func TestSlowEchoKeepsItsKey(t *testing.T) {
	const lock = 300 * time.Millisecond
	t.Setenv(envIdempotencyLockTimeout, lock.String())
	t.Setenv(envEchoDelay, (10 * lock).String())
	a, url := newTestApp(t)
	tok := mintToken(t, a, "alice", "acme", false)
	first := make(chan []byte, 1)
	go func() {
		r := newHubClient(t).do(context.Background(), "POST", url+"/api/v1/echo", tok, `{"x":1}`, "Idempotency-Key", "slow-1")
		assert.Equal(t, http.StatusCreated, r.status, "%v", r)
		first <- r.body
	}()
	start := time.Now()
	for echoExecutions(t, url) == 0 {
		require.Less(t, time.Since(start), 10*time.Second, "the slow echo did not start")
		time.Sleep(10 * time.Millisecond)
	}
	conflicts := 0
	for done := false; !done; {
		select {
		case b := <-first:
			resp, b2 := call(t, "POST", url+"/api/v1/echo", tok, `{"x":1}`, "Idempotency-Key", "slow-1")
			assert.Equal(t, "true", resp.Header.Get("Idempotent-Replay"))
			assert.Equal(t, decodeBody(t, b)["id"], decodeBody(t, b2)["id"])
			done = true
		default:
			resp, b := call(t, "POST", url+"/api/v1/echo", tok, `{"x":1}`, "Idempotency-Key", "slow-1")
			if resp.Header.Get("Idempotent-Replay") != "true" {
				assert.Equal(t, http.StatusConflict, resp.StatusCode, "a retry while the echo runs: %s", b)
				conflicts++
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	assert.Equal(t, 1, echoExecutions(t, url), "the slow echo ran once")
	assert.Positive(t, conflicts)
}

func TestEchoDelayIsValidated(t *testing.T) {
	t.Setenv(envEchoDelay, "soon")
	cfg := config{DatabaseURL: "sqlite:///" + filepath.Join(t.TempDir(), "hub.db"), AuthSecret: []byte(testAuthSecret), Migrations: migrate.DefaultPolicy()}
	cfg.DBPath, _ = sqlitePath(cfg.DatabaseURL)
	_, err := newApp(context.Background(), cfg, slog.New(slog.DiscardHandler))
	require.Error(t, err)
	assert.Contains(t, err.Error(), envEchoDelay)
}

// TestIdempotencyScopeKeepsItsKeys: the default scope, read from the
// caller the hub's auth states, is the string earlier versions of the hub
// built themselves ("<len(tenant)>:<tenant>/<user>"), so records they
// stored are still found after an upgrade.
func TestIdempotencyScopeKeepsItsKeys(t *testing.T) {
	for _, p := range []principal{
		{UserID: "alice", TenantID: "acme"},
		{UserID: "alice"},
		{UserID: "c", TenantID: "a/b"},
		{UserID: "b/c", TenantID: "a"},
	} {
		r := httptest.NewRequestWithContext(withPrincipal(context.Background(), p), http.MethodPost, "/api/v1/echo", nil)
		got, err := idempotency.DefaultScope(r)
		require.NoError(t, err)
		assert.Equal(t, fmt.Sprintf("%d:%s/%s", len(p.TenantID), p.TenantID, p.UserID), got, "%+v", p)
	}
}
