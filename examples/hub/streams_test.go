package main

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// hubSSE is a raw event-stream reader over a real HTTP response.
type hubSSE struct {
	resp *http.Response
	r    *bufio.Reader
}

func openHubSSE(t *testing.T, url string) *hubSSE {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	require.NoError(t, err)
	resp, err := (&http.Client{Transport: contractTransport(t, nil)}).Do(req) // checked against openapi.json
	require.NoError(t, err)
	t.Cleanup(func() { cancel(); resp.Body.Close() })
	return &hubSSE{resp: resp, r: bufio.NewReader(resp.Body)}
}

// next returns the next frame (lines up to a blank line).
func (s *hubSSE) next(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for {
		line, err := s.r.ReadString('\n')
		require.NoError(t, err, "stream ended after %q", b.String())
		if line == "\n" {
			return b.String()
		}
		b.WriteString(line)
	}
}

// until skips frames until one contains want.
func (s *hubSSE) until(t *testing.T, want string) string {
	t.Helper()
	for i := 0; i < 1000; i++ {
		if f := s.next(t); strings.Contains(f, want) {
			return f
		}
	}
	t.Fatalf("no frame with %q", want)
	return ""
}

func hubWaitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for i := 0; i < 500; i++ {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

func streamStatus(t *testing.T, url, adminTok string) map[string]any {
	t.Helper()
	resp, b := call(t, "GET", url+"/api/v1/streaming/status", adminTok, "")
	require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
	return decodeBody(t, b)
}

func TestStreamsSSE(t *testing.T) {
	a, url := newTestApp(t)
	adminTok := mintToken(t, a, "root", "ops", true)

	// 401 before any stream byte.
	resp, b := call(t, "GET", url+"/api/v1/streams/events", "", "")
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	assert.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"))
	assert.NotContains(t, string(b), "event:")
	resp, _ = call(t, "GET", url+"/api/v1/streams/events?access_token=garbage", "", "")
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)

	// Another tenant's resource: 403.
	resp, b = call(t, "GET", url+"/api/v1/streams/events?tenant_id=globex&access_token="+mintToken(t, a, "alice", "acme", false), "", "")
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)
	assert.Equal(t, "tenant_mismatch", decodeBody(t, b)["reason"])

	s := openHubSSE(t, url+"/api/v1/streams/events?access_token="+mintToken(t, a, "alice", "acme", false))
	require.Equal(t, http.StatusOK, s.resp.StatusCode)
	assert.Equal(t, "text/event-stream", s.resp.Header.Get("Content-Type"))
	hello := s.until(t, "event: hello")
	assert.Contains(t, hello, `"tenant_id":"acme"`)

	a.publish("globex", "preview.created", map[string]string{"preview_id": "secret"})
	a.publish("acme", "flag.toggled", map[string]any{"key": "beta", "enabled": true})
	f := s.next(t)
	assert.Contains(t, f, "event: flag.toggled\n")
	assert.Contains(t, f, `"key":"beta"`)
	a.publish("", "quota.changed", map[string]int{"limit": 5})
	assert.Contains(t, s.next(t), "event: quota.changed\n")

	st := streamStatus(t, url, adminTok)
	assert.EqualValues(t, 1, st["active"])
	assert.EqualValues(t, 1, st["sse"])
	assert.EqualValues(t, 0, st["websocket"])
	byReason := st["by_reason"].(map[string]any)
	for _, k := range []string{"expired", "revoked", "tenant_mismatch", "client_closed"} {
		assert.Contains(t, byReason, k)
	}
	assert.EqualValues(t, 1, byReason["tenant_mismatch"])

	// Admin revoke by user.
	resp, b = call(t, "POST", url+"/api/v1/streaming/revoke", adminTok, `{"user_id":"alice"}`)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
	assert.EqualValues(t, 1, decodeBody(t, b)["dropped"])
	assert.Contains(t, s.until(t, "event: auth_revoked"), "revoked")
	assert.EqualValues(t, 1, streamStatus(t, url, adminTok)["by_reason"].(map[string]any)["revoked"])

	resp, b = call(t, "POST", url+"/api/v1/streaming/cleanup", adminTok, "")
	require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
	assert.EqualValues(t, 0, decodeBody(t, b)["dropped"])

	resp, b = call(t, "GET", url+"/metrics", "", "")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, string(b), `hardening_streamauth_dropped_total{reason="revoked"} 1`)
	assert.Contains(t, string(b), `hardening_streamauth_streams{kind="sse"} 0`)
}

func TestStreamsAdminEndpoints(t *testing.T) {
	a, url := newTestApp(t)
	userTok := mintToken(t, a, "alice", "acme", false)
	adminTok := mintToken(t, a, "root", "ops", true)
	tests := []struct {
		method, path, token, body string
		status                    int
		reason                    string
	}{
		{"GET", "/api/v1/streaming/status", "", "", 401, "unauthenticated"},
		{"GET", "/api/v1/streaming/status", userTok, "", 403, "forbidden"},
		{"POST", "/api/v1/streaming/cleanup", userTok, "", 403, "forbidden"},
		{"POST", "/api/v1/streaming/revoke", userTok, `{"user_id":"x"}`, 403, "forbidden"},
		{"POST", "/api/v1/streaming/revoke", adminTok, `{}`, 400, "invalid_selector"},
		{"POST", "/api/v1/streaming/revoke", adminTok, `{"user":"x"}`, 400, ""},
		{"POST", "/api/v1/streaming/revoke", adminTok, `{"tenant_id":"nobody"}`, 200, ""},
	}
	for _, tt := range tests {
		resp, b := call(t, tt.method, url+tt.path, tt.token, tt.body)
		assert.Equal(t, tt.status, resp.StatusCode, "%s %s %s: %s", tt.method, tt.path, tt.body, b)
		if tt.reason != "" {
			assert.Equal(t, tt.reason, decodeBody(t, b)["reason"])
		}
	}
}

func TestStreamsSSEExpiry(t *testing.T) {
	a, url := newTestApp(t)
	tok, err := a.auth.mint("alice", "acme", nil, 2*time.Second)
	require.NoError(t, err)
	p, err := a.auth.verify(tok)
	require.NoError(t, err)
	s := openHubSSE(t, url+"/api/v1/streams/events?access_token="+tok)
	require.Equal(t, http.StatusOK, s.resp.StatusCode)
	f := s.until(t, "event: auth_expired")
	ended := time.Now()
	assert.Contains(t, f, `"reason":"expired"`)
	assert.Less(t, ended.Sub(p.ExpiresAt), time.Second)
	assert.False(t, ended.Before(p.ExpiresAt))
	_, err = s.r.ReadString('\n')
	assert.Error(t, err, "the stream ends after auth_expired")
}

func TestStreamsHeartbeat(t *testing.T) {
	t.Setenv(envStreamHeartbeat, "50ms")
	a, url := newTestApp(t)
	s := openHubSSE(t, url+"/api/v1/streams/events?access_token="+mintToken(t, a, "alice", "acme", false))
	assert.Contains(t, s.until(t, "event: heartbeat"), `"time":`)
}

func dialHubWS(t *testing.T, url, tok string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(url, "http")+"/api/v1/streams/ws?access_token="+tok, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.CloseNow() })
	return c
}

func readWS(t *testing.T, c *websocket.Conn) map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, b, err := c.Read(ctx)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m), string(b))
	return m
}

func TestStreamsWebSocket(t *testing.T) {
	a, url := newTestApp(t)
	adminTok := mintToken(t, a, "root", "ops", true)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(url, "http")+"/api/v1/streams/ws", nil)
	require.Error(t, err)
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)

	tok, err := a.auth.mint("alice", "acme", nil, 2*time.Second)
	require.NoError(t, err)
	c := dialHubWS(t, url, tok)
	assert.Equal(t, "hello", readWS(t, c)["event"])
	a.publish("globex", "preview.deleted", map[string]string{"preview_id": "secret"})
	a.publish("acme", "preview.created", map[string]string{"preview_id": "p1"})
	m := readWS(t, c)
	assert.Equal(t, "preview.created", m["event"])
	assert.Equal(t, map[string]any{"preview_id": "p1"}, m["data"])

	// In-band refresh past the first token's expiry.
	fresh := mintToken(t, a, "alice", "acme", false)
	msg, _ := json.Marshal(map[string]string{"type": "refresh", "token": fresh})
	require.NoError(t, c.Write(ctx, websocket.MessageText, msg))
	assert.Equal(t, "refreshed", readWS(t, c)["type"])
	time.Sleep(2500 * time.Millisecond)
	assert.EqualValues(t, 1, streamStatus(t, url, adminTok)["websocket"])

	resp2, b := call(t, "POST", url+"/api/v1/streaming/revoke", adminTok, `{"tenant_id":"acme"}`)
	require.Equal(t, http.StatusOK, resp2.StatusCode, string(b))
	_, _, err = c.Read(ctx)
	var ce websocket.CloseError
	require.ErrorAs(t, err, &ce)
	assert.EqualValues(t, 4003, ce.Code)
	assert.Equal(t, "revoked", ce.Reason)

	// Expiry: 4001 token_expired. The tenant's revocation refuses tokens
	// issued in its second or before: mint bob's in the next second.
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second + 10*time.Millisecond)))
	short, err := a.auth.mint("bob", "acme", nil, 2*time.Second)
	require.NoError(t, err)
	c2 := dialHubWS(t, url, short)
	readWS(t, c2)
	_, _, err = c2.Read(ctx)
	require.ErrorAs(t, err, &ce)
	assert.EqualValues(t, 4001, ce.Code)
	assert.Equal(t, "token_expired", ce.Reason)
}

func TestStreamsRevokeAcrossReplicas(t *testing.T) {
	srv := testRedis(t)
	t.Setenv(envRedisPrefix, srv.Prefix)
	redisMode := func(c *config) { c.RedisURL = srv.URL }
	a, urlA := newTestApp(t, redisMode)
	b, urlB := newTestApp(t, redisMode)
	aliceTok := mintToken(t, b, "alice", "acme", false)
	s := openHubSSE(t, urlB+"/api/v1/streams/events?access_token="+aliceTok)
	s.until(t, "event: hello")
	resp, body := call(t, "POST", urlA+"/api/v1/streaming/revoke", mintToken(t, a, "root", "ops", true), `{"user_id":"alice"}`)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	assert.EqualValues(t, 0, decodeBody(t, body)["dropped"], "no local stream on replica A")
	s.until(t, "event: auth_revoked")
	// The revocation reached B's registry: alice's token no longer opens a
	// stream there.
	resp, body = call(t, "GET", urlB+"/api/v1/streams/events?access_token="+aliceTok, "", "")
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	assert.Equal(t, "token_revoked", decodeBody(t, body)["reason"])
	hubWaitFor(t, "B dropped", func() bool {
		return streamStatus(t, urlB, mintToken(t, b, "root", "ops", true))["active"] == float64(0)
	})
}

// TestStreamsEventsReachOtherReplicas: with Redis, a preview created and a
// flag toggled through replica A appear on a stream held by replica B.
func TestStreamsEventsReachOtherReplicas(t *testing.T) {
	srv := testRedis(t)
	t.Setenv(envRedisPrefix, srv.Prefix)
	redisMode := func(c *config) { c.RedisURL = srv.URL }
	a, urlA := newTestApp(t, redisMode)
	b, urlB := newTestApp(t, redisMode)
	s := openHubSSE(t, urlB+"/api/v1/streams/events?access_token="+mintToken(t, b, "bob", "acme", false))
	s.until(t, "event: hello")

	resp, body := call(t, "POST", urlA+"/api/v1/previews", mintToken(t, a, "alice", "acme", false), `{"system_id":"s1"}`)
	require.Equal(t, http.StatusCreated, resp.StatusCode, string(body))
	got := s.until(t, "event: preview.created")
	assert.Contains(t, got, decodeBody(t, body)["preview_id"].(string))
	assert.NotContains(t, got, decodeBody(t, body)["token"].(string), "the creator's token stays with the creator")
}
