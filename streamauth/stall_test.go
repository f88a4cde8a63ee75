package streamauth_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening"
	"github.com/systembuilderhub/hardening/streamauth"
)

// trackedConn records when the server closes its side of a connection.
type trackedConn struct {
	net.Conn
	once   sync.Once
	closed chan struct{}
}

func (c *trackedConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return c.Conn.Close()
}

// trackingListener hands out trackedConns with small send buffers, so a
// client that stops reading stalls the server's writes at once.
type trackingListener struct {
	net.Listener
	accepted chan *trackedConn
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(8 << 10)
	}
	t := &trackedConn{Conn: c, closed: make(chan struct{})}
	l.accepted <- t
	return t, nil
}

// stallServer serves h on loopback; the server side of every connection is
// sent on the returned channel.
func stallServer(t *testing.T, h http.Handler) (*httptest.Server, <-chan *trackedConn) {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	l := &trackingListener{Listener: srv.Listener, accepted: make(chan *trackedConn, 16)}
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, l.accepted
}

// ttlAuth authenticates everyone as user u of tenant t, with a lifetime
// taken from the ttl query parameter (default an hour).
var ttlAuth = hardening.AuthenticatorFunc(func(r *http.Request) (hardening.Caller, error) {
	ttl := time.Hour
	if d, err := time.ParseDuration(r.URL.Query().Get("ttl")); err == nil {
		ttl = d
	}
	return hardening.Caller{Subject: "u", Tenant: "t", ExpiresAt: time.Now().Add(ttl)}, nil
})

var bigEvent = streamauth.Event{Type: "big", Data: bytes.Repeat([]byte("x"), 64<<10)}

// spamSSE sends big events as fast as the client takes them when the
// request asks (?spam=1), else forwards published events.
var spamSSE = streamauth.SSEHandlerFunc(func(ctx context.Context, s *streamauth.SSEStream) error {
	if s.Request().URL.Query().Get("spam") == "" {
		return streamauth.ForwardSSE.ServeSSE(ctx, s)
	}
	for ctx.Err() == nil {
		if err := s.Send(bigEvent); err != nil {
			return err
		}
	}
	return nil
})

// spamWS sends big messages as fast as the client takes them.
var spamWS = streamauth.WSHandlerFunc(func(ctx context.Context, c *streamauth.WSConn) error {
	for ctx.Err() == nil {
		if err := c.Write(ctx, bigEvent.Data); err != nil {
			return err
		}
	}
	return nil
})

// stalledSSE opens an event stream over a raw TCP connection with a small
// receive buffer and never reads from it.
func stalledSSE(t *testing.T, srv *httptest.Server, query string) {
	t.Helper()
	addr := srv.Listener.Addr().String()
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	require.NoError(t, c.(*net.TCPConn).SetReadBuffer(4<<10))
	_, err = fmt.Fprintf(c, "GET /?%s HTTP/1.1\r\nHost: %s\r\n\r\n", query, addr)
	require.NoError(t, err)
}

// waitClosed fails unless the server closes c within d.
func waitClosed(t *testing.T, c *trackedConn, d time.Duration, what string) time.Duration {
	t.Helper()
	start := time.Now()
	select {
	case <-c.closed:
		return time.Since(start)
	case <-time.After(d):
		t.Fatalf("%s: the server kept the connection open for %v", what, d)
		return 0
	}
}

// TestSSEStalledClientClosedAfterExpiry: a client that stops reading while
// the server writes holds no connection past its expiry plus the write
// timeout, and its stream counts toward the user's limit until the
// connection is closed.
func TestSSEStalledClientClosedAfterExpiry(t *testing.T) {
	t.Parallel()
	const wt = 3 * time.Second
	reg := newRegistry(t, streamauth.WithKeepAlive(-1), streamauth.WithMaxStreamsPerUser(1))
	h, err := streamauth.SSE(ttlAuth, reg, spamSSE, streamauth.WithWriteTimeout(wt))
	require.NoError(t, err)
	srv, accepted := stallServer(t, h)

	stalledSSE(t, srv, "spam=1&ttl=500ms")
	conn := <-accepted
	waitFor(t, "expiry", func() bool { return reg.Status().ByReason[streamauth.ReasonExpired] == 1 })

	// Dropped but not closed: it still counts.
	assert.Equal(t, 1, reg.Status().Active, "a stream counts until its connection is closed")
	sc := openSSE(t, httpClient(t), srv.URL, "")
	assert.Equal(t, http.StatusTooManyRequests, sc.resp.StatusCode)
	sc.close()

	took := waitClosed(t, conn, wt+5*time.Second, "after expiry")
	t.Logf("connection closed %v after the expiry was seen (write timeout %v)", took, wt)
	waitFor(t, "stream removed", func() bool { return reg.Status().Active == 0 })
	sc = openSSE(t, httpClient(t), srv.URL, "")
	assert.Equal(t, http.StatusOK, sc.resp.StatusCode, "the slot is free once the connection closed")
	assert.Zero(t, reg.Status().ByReason[streamauth.ReasonWriteTimeout])
}

// TestSSEStalledWriteDropsStream: a write the client does not take within
// the write timeout ends the stream (write_timeout) long before its expiry.
func TestSSEStalledWriteDropsStream(t *testing.T) {
	t.Parallel()
	reg := newRegistry(t, streamauth.WithKeepAlive(-1))
	h, err := streamauth.SSE(ttlAuth, reg, spamSSE, streamauth.WithWriteTimeout(300*time.Millisecond))
	require.NoError(t, err)
	srv, accepted := stallServer(t, h)

	stalledSSE(t, srv, "spam=1")
	waitClosed(t, <-accepted, 10*time.Second, "stalled write")
	waitFor(t, "stream removed", func() bool { return reg.Status().Active == 0 })
	assert.EqualValues(t, 1, reg.Status().ByReason[streamauth.ReasonWriteTimeout])
}

// TestWebSocketStalledClientClosedAfterRevocation: a WebSocket client that
// stops reading is closed within the write timeout of its revocation and
// counts until then.
func TestWebSocketStalledClientClosedAfterRevocation(t *testing.T) {
	t.Parallel()
	const wt = 3 * time.Second
	reg := newRegistry(t, streamauth.WithKeepAlive(-1))
	h, err := streamauth.WebSocket(ttlAuth, reg, spamWS, streamauth.WithWriteTimeout(wt))
	require.NoError(t, err)
	srv, accepted := stallServer(t, h)

	dialer := &net.Dialer{}
	client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dialer.DialContext(ctx, network, addr)
		if err == nil {
			_ = c.(*net.TCPConn).SetReadBuffer(4 << 10)
		}
		return c, err
	}}}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), &websocket.DialOptions{HTTPClient: client})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.CloseNow() })
	conn := <-accepted
	time.Sleep(200 * time.Millisecond) // the server's writes are stalled by now

	_, err = reg.Revoke(context.Background(), streamauth.Selector{Subject: "u"})
	require.NoError(t, err)
	assert.Equal(t, 1, reg.Status().Active, "a stream counts until its connection is closed")
	waitClosed(t, conn, wt+5*time.Second, "after revocation")
	waitFor(t, "stream removed", func() bool { return reg.Status().Active == 0 })
	assert.EqualValues(t, 1, reg.Status().ByReason[streamauth.ReasonRevoked])
}

// TestWebSocketStalledWriteDropsStream: a message the client does not take
// within the write timeout ends the stream as write_timeout.
func TestWebSocketStalledWriteDropsStream(t *testing.T) {
	t.Parallel()
	reg := newRegistry(t, streamauth.WithKeepAlive(-1))
	h, err := streamauth.WebSocket(ttlAuth, reg, spamWS, streamauth.WithWriteTimeout(300*time.Millisecond))
	require.NoError(t, err)
	srv, accepted := stallServer(t, h)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.CloseNow() })
	waitClosed(t, <-accepted, 10*time.Second, "stalled write")
	waitFor(t, "stream removed", func() bool { return reg.Status().Active == 0 })
	assert.EqualValues(t, 1, reg.Status().ByReason[streamauth.ReasonWriteTimeout])
}

// TestSSEConnectionReusableAfterStream: the write deadlines of a stream that
// ended cleanly do not linger on the keep-alive connection: a request sent
// on it later than the write timeout is answered.
func TestSSEConnectionReusableAfterStream(t *testing.T) {
	t.Parallel()
	reg := newRegistry(t, streamauth.WithKeepAlive(-1))
	const wt = 100 * time.Millisecond
	h, err := streamauth.SSE(ttlAuth, reg, streamauth.SSEHandlerFunc(func(ctx context.Context, s *streamauth.SSEStream) error {
		return s.Send(streamauth.Event{Type: "only"})
	}), streamauth.WithWriteTimeout(wt))
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.Handle("/sse", h)
	mux.HandleFunc("/plain", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok")) })
	srv := serve(t, mux)
	c := httpClient(t)
	var reused []bool
	get := func(path string) string {
		trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { reused = append(reused, i.Reused) }}
		req, err := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), http.MethodGet, srv.URL+path, nil)
		require.NoError(t, err)
		resp, err := c.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return string(b)
	}
	assert.Contains(t, get("/sse"), "event: only")
	time.Sleep(3 * wt)
	assert.Equal(t, "ok", get("/plain"))
	assert.Equal(t, []bool{false, true}, reused, "the second request reuses the stream's connection")
}
