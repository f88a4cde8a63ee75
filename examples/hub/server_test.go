package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// startLimitedHub starts the hub binary on a fresh database with the test
// auth secret and env.
func startLimitedHub(t *testing.T, env ...string) *hubProc {
	t.Helper()
	return startHub(t, append([]string{"DATABASE_URL=sqlite:///" + filepath.Join(t.TempDir(), "hub.db"),
		"HUB_AUTH_SECRET=" + testAuthSecret}, env...)...)
}

// trickle sends the head of a request promising a 1000-byte body, then
// one body byte every 100ms until the connection breaks or 20s pass. It
// returns the response the hub sent (nil if none within 20s) and its
// body, whether the hub closed the connection after it, and how long that
// took.
func trickle(t *testing.T, addr, head string) (*http.Response, string, bool, time.Duration) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer c.Close()
	start := time.Now()
	_, err = fmt.Fprintf(c, "%sHost: %s\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{", head, addr)
	require.NoError(t, err)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for i := 0; i < 200; i++ {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			if _, err := c.Write([]byte(" ")); err != nil {
				return
			}
		}
	}()
	require.NoError(t, c.SetReadDeadline(start.Add(20*time.Second)))
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return nil, "", false, time.Since(start)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	_, err = br.ReadByte()
	closed := errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || (err != nil && strings.Contains(err.Error(), "reset"))
	return resp, string(body), closed, time.Since(start)
}

// TestBinarySlowBodyIsClosed is the slow-body attack: a client sends the
// headers of a request and then its body a byte at a time. Whether the
// route reads the body (an authenticated echo) or answers without it (no
// token: 401, and the server drains the body before answering), the hub
// answers and closes the connection once HUB_BODY_TIMEOUT has passed.
func TestBinarySlowBodyIsClosed(t *testing.T) {
	h := startLimitedHub(t, "HUB_BODY_TIMEOUT=1s")
	tok := testToken(t, "alice", "acme", false)
	for _, tc := range []struct {
		name, head string
		status     int
		detail     string
	}{
		{"unauthenticated", "POST /api/v1/echo HTTP/1.1\r\n", 401, ""},
		{"authenticated", "POST /api/v1/previews HTTP/1.1\r\nAuthorization: Bearer " + tok + "\r\n", 400, "body timeout"},
		{"no such route", "POST /nowhere HTTP/1.1\r\n", 404, ""},
	} {
		name := tc.name
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			resp, body, closed, took := trickle(t, h.addr, tc.head)
			require.NotNil(t, resp, "no response within %v", took)
			assert.Equal(t, tc.status, resp.StatusCode, body)
			assert.Contains(t, body, tc.detail)
			assert.True(t, closed, "the connection stays open after %v", took)
			assert.Less(t, took, 10*time.Second)
			t.Logf("%s: %d, closed after %v", name, resp.StatusCode, took.Round(time.Millisecond))
		})
	}
}

// TestBinaryBodyTimeoutSparesSlowHandlers: the body deadline ends with
// the body. A request whose body arrived at once and whose handler then
// takes longer than HUB_BODY_TIMEOUT (a 2s model call, 1s timeout) is
// answered, on a connection that serves the next request too.
func TestBinaryBodyTimeoutSparesSlowHandlers(t *testing.T) {
	h := startLimitedHub(t, "HUB_BODY_TIMEOUT=1s", "HUB_STUB_MODEL_DELAY=2s")
	tok := testToken(t, "alice", "acme", false)
	client := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1}, Timeout: 20 * time.Second}
	defer client.CloseIdleConnections()
	for i := range 2 {
		resp, err := client.Do(mustRequest(t, "POST", "http://"+h.addr+"/api/v1/llm/completions", tok, `{"prompt":"hi","max_cost_usd":0.01}`))
		require.NoError(t, err, "request %d", i)
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		assert.Equal(t, 200, resp.StatusCode, "request %d: %s", i, b)
	}
}

// TestBinaryConnectionCap: with HUB_MAX_CONNS=2 and two connections held
// open, a third is not served until one of them closes.
func TestBinaryConnectionCap(t *testing.T) {
	h := startLimitedHub(t, "HUB_MAX_CONNS=2")
	get := func(c net.Conn, wait time.Duration) (*http.Response, error) {
		if _, err := fmt.Fprintf(c, "GET /livez HTTP/1.1\r\nHost: %s\r\n\r\n", h.addr); err != nil {
			return nil, err
		}
		_ = c.SetReadDeadline(time.Now().Add(wait))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		return resp, err
	}
	var held []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", h.addr)
		require.NoError(t, err)
		defer c.Close()
		resp, err := get(c, 10*time.Second)
		require.NoError(t, err)
		require.Equal(t, 200, resp.StatusCode)
		held = append(held, c) // kept alive: the hub holds the connection
	}
	third, err := net.Dial("tcp", h.addr) // the kernel's backlog accepts it
	require.NoError(t, err)
	defer third.Close()
	_, err = get(third, time.Second)
	var ne net.Error
	require.ErrorAs(t, err, &ne, "a third connection was served")
	require.True(t, ne.Timeout(), "%v", err)

	require.NoError(t, held[0].Close())
	_ = third.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(third), nil)
	require.NoError(t, err, "the third connection is served once a slot frees")
	resp.Body.Close()
	assert.Equal(t, 200, resp.StatusCode)
}

// TestBinaryWriteTimeoutSparesStreams: with HUB_WRITE_TIMEOUT=1s, SSE and
// WebSocket streams keep delivering heartbeats long after it, while a
// plain request that takes longer than it (a 3s model call) is cut off.
func TestBinaryWriteTimeoutSparesStreams(t *testing.T) {
	h := startLimitedHub(t, "HUB_WRITE_TIMEOUT=1s", "HUB_STREAM_HEARTBEAT=200ms", "HUB_STUB_MODEL_DELAY=3s")
	tok := testToken(t, "alice", "acme", false)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	sse := openSSE(t, ctx, newHubClient(t), h.addr, tok)
	ws, _, err := websocket.Dial(ctx, "ws://"+h.addr+"/api/v1/streams/ws?access_token="+url.QueryEscape(tok), nil)
	require.NoError(t, err)
	defer ws.CloseNow()
	start := time.Now()

	// A completion takes 3s: its answer comes after the write deadline.
	resp, err := http.DefaultClient.Do(mustRequest(t, "POST", "http://"+h.addr+"/api/v1/llm/completions", tok,
		`{"prompt":"hi","max_cost_usd":0.01}`))
	if err == nil {
		b, rerr := io.ReadAll(resp.Body)
		resp.Body.Close()
		err = rerr
		assert.Error(t, err, "a 3s request answered past a 1s write timeout: %d %s", resp.StatusCode, b)
	}

	var wsHeartbeats int
	for time.Since(start) < 3500*time.Millisecond {
		_, b, err := ws.Read(ctx)
		require.NoError(t, err, "the WebSocket ended after %v", time.Since(start))
		if strings.Contains(string(b), `"heartbeat"`) && time.Since(start) > 2*time.Second {
			wsHeartbeats++
		}
	}
	assert.Positive(t, wsHeartbeats, "no WebSocket heartbeat after the write timeout")
	before := sse.count("heartbeat")
	time.Sleep(500 * time.Millisecond)
	assert.Greater(t, sse.count("heartbeat"), before, "the SSE stream stopped (%v)", sse.err)
}

// mustRequest builds a request with a bearer token and a JSON body.
func mustRequest(t *testing.T, method, url, token, body string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	return req
}

// TestServerHeaderLimit: a header block over maxHeaderBytes is answered
// 431 (Go's default limit is 1 MB); one under it is served.
func TestServerHeaderLimit(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := newServer(context.Background(), http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	go func() { _ = srv.Serve(ln) }()
	defer func() { // waits for the connection the 431 closes
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		assert.NoError(t, srv.Shutdown(ctx))
	}()
	client := &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	for size, want := range map[int]int{32 << 10: 200, 200 << 10: 431} {
		req, err := http.NewRequest("GET", "http://"+ln.Addr().String()+"/", nil)
		require.NoError(t, err)
		req.Header.Set("X-Big", strings.Repeat("a", size))
		resp, err := client.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, want, resp.StatusCode, "header of %d bytes", size)
	}
}
