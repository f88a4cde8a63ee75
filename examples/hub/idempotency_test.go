package main

import (
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
