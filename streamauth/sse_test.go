package streamauth_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening"
	"github.com/systembuilderhub/hardening/internal/problem"
	"github.com/systembuilderhub/hardening/streamauth"
)

func sseServer(t testing.TB, auth hardening.Authenticator, reg *streamauth.Registry, h streamauth.SSEHandler, opts ...streamauth.HandlerOption) string {
	t.Helper()
	hh, err := streamauth.SSE(auth, reg, h, opts...)
	require.NoError(t, err)
	return serve(t, hh).URL
}

func TestSSERejectsBeforeAnyStreamByte(t *testing.T) {
	t.Parallel()
	auth := newAuth(t, streamauth.WithAudience("hub"))
	other, err := streamauth.NewJWT([]byte("another-secret-of-32-bytes-long!"))
	require.NoError(t, err)
	reg := newRegistry(t)
	var called atomic.Int32
	url := sseServer(t, auth, reg, streamauth.SSEHandlerFunc(func(context.Context, *streamauth.SSEStream) error {
		called.Add(1)
		return nil
	}))
	c := httpClient(t)
	future := time.Now().Add(time.Hour)
	tests := []struct {
		name, token, reason string
	}{
		{"missing", "", "missing_token"},
		{"garbage", "not-a-jwt", "invalid_token"},
		{"wrong key", token(t, other, "u1", "t1", future), "invalid_token"},
		{"wrong audience", token(t, auth, "u1", "t1", future), "invalid_token"},
		{"expired", token(t, auth, "u1", "t1", time.Now().Add(-time.Minute)), "token_expired"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, url+"?access_token="+tt.token, nil)
			require.NoError(t, err)
			req.Header.Set("Accept", "text/event-stream")
			resp, err := c.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
			assert.Equal(t, problem.ContentType, resp.Header.Get("Content-Type"))
			assert.Contains(t, resp.Header.Get("WWW-Authenticate"), "Bearer")
			var p map[string]any
			require.NoError(t, json.Unmarshal(body, &p), string(body))
			assert.Equal(t, tt.reason, p["reason"])
			assert.NotContains(t, string(body), "data:")
		})
	}
	assert.Zero(t, called.Load(), "handler must not run for rejected requests")
	assert.Zero(t, reg.Status().Active)
}

func TestSSEExpiryEndsWithinOneSecond(t *testing.T) {
	t.Parallel()
	auth := newAuth(t)
	reg := newRegistry(t, streamauth.WithKeepAlive(-1))
	url := sseServer(t, auth, reg, streamauth.ForwardSSE)
	exp := time.Now().Add(2 * time.Second).Truncate(time.Second)
	sc := openSSE(t, httpClient(t), url, token(t, auth, "u1", "t1", exp))
	require.Equal(t, http.StatusOK, sc.resp.StatusCode)
	assert.Equal(t, "text/event-stream", sc.resp.Header.Get("Content-Type"))

	f := sc.until(t, "event: auth_expired")
	assert.Contains(t, f, `data: {"reason":"expired"}`)
	rest, err := sc.rest()
	require.NoError(t, err)
	assert.Empty(t, rest)
	ended := time.Now()
	assert.False(t, ended.Before(exp), "stream ended before exp")
	assert.Less(t, ended.Sub(exp), time.Second, "stream must end within 1s after exp")
	waitFor(t, "stream removed", func() bool { return reg.Status().Active == 0 })
	assert.EqualValues(t, 1, reg.Status().ByReason[streamauth.ReasonExpired])
	assert.Zero(t, reg.ArmedTimers())
}

func TestSSEContextAndLastEventIDAndKeepAlive(t *testing.T) {
	t.Parallel()
	auth := newAuth(t)
	reg := newRegistry(t, streamauth.WithKeepAlive(20*time.Millisecond))
	url := sseServer(t, auth, reg, streamauth.SSEHandlerFunc(func(ctx context.Context, s *streamauth.SSEStream) error {
		p, ok := streamauth.FromContext(ctx)
		if !ok {
			return fmt.Errorf("no principal")
		}
		tid, _ := streamauth.TenantFromContext(ctx)
		info, _ := streamauth.StreamFromContext(ctx)
		ev, _ := streamauth.NewEvent("hello", map[string]string{"user": p.Subject, "tenant": tid,
			"last": s.LastEventID(), "url": s.Request().URL.String(), "kind": string(info.Kind)})
		ev.ID = "42"
		if err := s.Send(ev); err != nil {
			return err
		}
		<-ctx.Done()
		return nil
	}))
	tok := token(t, auth, "u1", "t1", time.Now().Add(time.Hour))
	sc := openSSE(t, httpClient(t), url+"/x?access_token="+tok+"&a=b", "", "Last-Event-ID", "41")
	f := sc.until(t, "event: hello")
	assert.Contains(t, f, "id: 42\n")
	var data map[string]string
	require.NoError(t, json.Unmarshal([]byte(strings.TrimPrefix(strings.Split(f, "\n")[2], "data: ")), &data), f)
	assert.Equal(t, map[string]string{"user": "u1", "tenant": "t1", "last": "41", "kind": "sse",
		"url": "/x?a=b&access_token=REDACTED"}, data)
	sc.until(t, ": keep-alive")
}

func TestSSEPublishIsTenantScoped(t *testing.T) {
	t.Parallel()
	auth := newAuth(t)
	reg := newRegistry(t, streamauth.WithKeepAlive(-1))
	url := sseServer(t, auth, reg, streamauth.ForwardSSE)
	c := httpClient(t)
	exp := time.Now().Add(time.Hour)
	a := openSSE(t, c, url, token(t, auth, "ua", "tenant-a", exp))
	b := openSSE(t, c, url, token(t, auth, "ub", "tenant-b", exp))
	waitFor(t, "two streams", func() bool { return reg.Status().SSE == 2 })
	// ForwardSSE subscribes to events right after the stream opens.
	waitFor(t, "subscribed", func() bool {
		return reg.PublishLocal("tenant-a", streamauth.Event{Type: "ping"}) == 1 &&
			reg.PublishLocal("tenant-b", streamauth.Event{Type: "ping"}) == 1
	})
	assert.Equal(t, 1, reg.PublishLocal("tenant-a", streamauth.Event{Type: "secret", Data: []byte(`"for a"`)}))
	assert.Equal(t, 1, reg.PublishLocal("tenant-b", streamauth.Event{Type: "done", Data: []byte(`"for b"`)}))
	assert.Contains(t, a.until(t, "event: secret"), `data: "for a"`)
	f := b.until(t, "event: done")
	assert.NotContains(t, f, "for a")
	assert.Zero(t, reg.PublishLocal("tenant-c", streamauth.Event{Type: "x"}))
}

func TestSSESendOfAnotherTenantDropsStream(t *testing.T) {
	t.Parallel()
	auth := newAuth(t)
	reg := newRegistry(t, streamauth.WithKeepAlive(-1))
	sent := make(chan error, 1)
	url := sseServer(t, auth, reg, streamauth.SSEHandlerFunc(func(ctx context.Context, s *streamauth.SSEStream) error {
		sent <- s.Send(streamauth.Event{Type: "leak", Tenant: "other", Data: []byte("x")})
		<-ctx.Done()
		return nil
	}))
	sc := openSSE(t, httpClient(t), url, token(t, auth, "u", "mine", time.Now().Add(time.Hour)))
	assert.ErrorIs(t, <-sent, streamauth.ErrTenantMismatch)
	f := sc.until(t, "event: tenant_mismatch")
	assert.NotContains(t, f, "leak")
	rest, _ := sc.rest()
	assert.NotContains(t, rest, "leak")
	waitFor(t, "dropped", func() bool { return reg.Status().Active == 0 })
	assert.EqualValues(t, 1, reg.Status().ByReason[streamauth.ReasonTenantMismatch])
}

func TestResourceTenantMismatchRefused(t *testing.T) {
	t.Parallel()
	auth := newAuth(t)
	reg := newRegistry(t)
	var called atomic.Int32
	mux := http.NewServeMux()
	h, err := streamauth.SSE(auth, reg, streamauth.SSEHandlerFunc(func(context.Context, *streamauth.SSEStream) error {
		called.Add(1)
		return nil
	}), streamauth.WithResourceTenant(func(r *http.Request) string { return r.PathValue("tenant") }))
	require.NoError(t, err)
	mux.Handle("GET /tenants/{tenant}/events", h)
	srv := serve(t, mux)
	tok := token(t, auth, "u", "t1", time.Now().Add(time.Hour))
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/tenants/t2/events", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := httpClient(t).Do(req)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)
	assert.Contains(t, string(body), `"reason":"tenant_mismatch"`)
	assert.Zero(t, called.Load())
	assert.EqualValues(t, 1, reg.Status().ByReason[streamauth.ReasonTenantMismatch])

	req, _ = http.NewRequest(http.MethodGet, srv.URL+"/tenants/t1/events", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err = httpClient(t).Do(req)
	require.NoError(t, err)
	_, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.EqualValues(t, 1, called.Load())
}

func TestStreamLimits(t *testing.T) {
	t.Parallel()
	auth := newAuth(t)
	reg := newRegistry(t, streamauth.WithMaxStreamsPerUser(1), streamauth.WithMaxStreamsPerTenant(2))
	url := sseServer(t, auth, reg, streamauth.ForwardSSE)
	c := httpClient(t)
	exp := time.Now().Add(time.Hour)
	openSSE(t, c, url, token(t, auth, "u1", "t", exp))
	tests := []struct {
		user, scope string
		status      int
	}{
		{"u1", "user", http.StatusTooManyRequests},
		{"u2", "", http.StatusOK},
		{"u3", "tenant", http.StatusTooManyRequests},
	}
	for _, tt := range tests {
		sc := openSSE(t, c, url, token(t, auth, tt.user, "t", exp))
		assert.Equal(t, tt.status, sc.resp.StatusCode, tt.user)
		if tt.scope != "" {
			body, _ := sc.rest()
			assert.Contains(t, body, `"scope":"`+tt.scope+`"`)
			assert.Contains(t, body, `"reason":"stream_limit_exceeded"`)
			sc.close()
		}
	}
}

func TestSSERevokeAndCookie(t *testing.T) {
	t.Parallel()
	auth := newAuth(t)
	reg := newRegistry(t)
	url := sseServer(t, auth, reg, streamauth.ForwardSSE)
	c := httpClient(t)
	exp := time.Now().Add(time.Hour)
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.AddCookie(&http.Cookie{Name: "access_token", Value: token(t, auth, "u1", "t1", exp)})
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	keep := openSSE(t, c, url, token(t, auth, "u2", "t1", exp))
	waitFor(t, "two streams", func() bool { return reg.Status().Active == 2 })

	_, err = reg.Revoke(context.Background(), streamauth.Selector{})
	assert.ErrorIs(t, err, streamauth.ErrEmptySelector)
	n, err := reg.Revoke(context.Background(), streamauth.Selector{Subject: "u1"})
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.Contains(t, string(body), "event: auth_revoked\n")
	assert.Equal(t, 1, reg.Status().Active)
	assert.Equal(t, "u2", reg.Streams()[0].Subject)
	_ = keep
}

func TestCleanupAfterClockJump(t *testing.T) {
	t.Parallel()
	var offset atomic.Int64
	clock := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	auth := newAuth(t)
	reg := newRegistry(t, streamauth.WithClock(clock))
	url := sseServer(t, auth, reg, streamauth.ForwardSSE)
	c := httpClient(t)
	a := openSSE(t, c, url, token(t, auth, "u1", "t1", time.Now().Add(time.Hour)))
	openSSE(t, c, url, token(t, auth, "u2", "t1", time.Now().Add(3*time.Hour)))
	waitFor(t, "two streams", func() bool { return reg.Status().Active == 2 })
	n, err := reg.Cleanup(context.Background())
	require.NoError(t, err)
	assert.Zero(t, n)
	offset.Store(int64(2 * time.Hour))
	n, err = reg.Cleanup(context.Background())
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	a.until(t, "event: auth_expired")
	assert.Equal(t, "u2", reg.Streams()[0].Subject)
}

func TestQueryTokenNeverLogged(t *testing.T) {
	t.Parallel()
	var logs logBuffer
	auth := newAuth(t)
	reg := newRegistry(t, streamauth.WithLogger(debugLogger(&logs)))
	url := sseServer(t, auth, reg, streamauth.ForwardSSE)
	c := httpClient(t)
	good := token(t, auth, "u1", "t1", time.Now().Add(time.Hour))
	bad := token(t, auth, "u1", "t1", time.Now().Add(-time.Hour))
	sc := openSSE(t, c, url+"?access_token="+good, "")
	require.Equal(t, http.StatusOK, sc.resp.StatusCode)
	sc2 := openSSE(t, c, url+"?access_token="+bad, "")
	require.Equal(t, http.StatusUnauthorized, sc2.resp.StatusCode)
	_, err := reg.Revoke(context.Background(), streamauth.Selector{Tenant: "t1"})
	require.NoError(t, err)
	_, _ = sc.rest()
	out := logs.String()
	for _, want := range []string{`"event":"accepted"`, `"event":"auth_rejected"`, `"reason":"token_expired"`, `"event":"stream_dropped"`, `"reason":"revoked"`, "access_token=REDACTED"} {
		assert.Contains(t, out, want)
	}
	assert.NotContains(t, out, good)
	assert.NotContains(t, out, bad)
	assert.Equal(t, "/s?access_token=REDACTED&x=1", streamauth.RedactedURL(mustURL(t, "/s?access_token=abc&x=1")))
}

func TestRegistryCloseEndsStreams(t *testing.T) {
	t.Parallel()
	auth := newAuth(t)
	reg, err := streamauth.NewRegistry()
	require.NoError(t, err)
	url := sseServer(t, auth, reg, streamauth.ForwardSSE)
	sc := openSSE(t, httpClient(t), url, token(t, auth, "u1", "t1", time.Now().Add(time.Hour)))
	waitFor(t, "stream", func() bool { return reg.Status().Active == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, reg.Close(ctx))
	sc.until(t, "event: shutdown")
	after := openSSE(t, httpClient(t), url, token(t, auth, "u1", "t1", time.Now().Add(time.Hour)))
	assert.Equal(t, http.StatusServiceUnavailable, after.resp.StatusCode)
	assert.EqualValues(t, 1, reg.Status().ByReason[streamauth.ReasonShutdown])
}

func TestClientDisconnectIsCounted(t *testing.T) {
	t.Parallel()
	auth := newAuth(t)
	reg := newRegistry(t)
	url := sseServer(t, auth, reg, streamauth.ForwardSSE)
	sc := openSSE(t, httpClient(t), url, token(t, auth, "u1", "t1", time.Now().Add(time.Hour)))
	waitFor(t, "stream", func() bool { return reg.Status().Active == 1 })
	sc.close()
	waitFor(t, "dropped", func() bool { return reg.Status().Active == 0 })
	assert.EqualValues(t, 1, reg.Status().ByReason[streamauth.ReasonClientClosed])
	assert.Zero(t, reg.ArmedTimers())
}

// unwrapOnly hides the ResponseWriter's Flusher; http.ResponseController
// finds it through Unwrap.
type unwrapOnly struct{ w http.ResponseWriter }

func (u *unwrapOnly) Header() http.Header         { return u.w.Header() }
func (u *unwrapOnly) Write(b []byte) (int, error) { return u.w.Write(b) }
func (u *unwrapOnly) WriteHeader(code int)        { u.w.WriteHeader(code) }
func (u *unwrapOnly) Unwrap() http.ResponseWriter { return u.w }

func TestSSEFlushesThroughWrappedWriters(t *testing.T) {
	t.Parallel()
	auth := newAuth(t)
	reg := newRegistry(t)
	h, err := streamauth.SSE(auth, reg, streamauth.SSEHandlerFunc(func(ctx context.Context, s *streamauth.SSEStream) error {
		if err := s.Send(streamauth.Event{Type: "first", Data: []byte("line1\nline2")}); err != nil {
			return err
		}
		<-ctx.Done()
		return nil
	}))
	require.NoError(t, err)
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(&unwrapOnly{w}, r) }))
	sc := openSSE(t, httpClient(t), srv.URL, token(t, auth, "u", "t", time.Now().Add(time.Hour)))
	// The event arrives while the handler is still running: it was flushed.
	assert.Equal(t, "event: first\ndata: line1\ndata: line2\n", sc.until(t, "event: first"))
}

func TestRevocationRefusesOlderCredentials(t *testing.T) {
	t.Parallel()
	auth := newAuth(t)
	reg := newRegistry(t)
	url := sseServer(t, auth, reg, streamauth.ForwardSSE)
	c := httpClient(t)
	now := time.Now()
	signed := func(user, tenant string, iat time.Time) string {
		claims := streamauth.Claims{Tenant: tenant}
		claims.Subject = user
		claims.ExpiresAt = jwt.NewNumericDate(now.Add(time.Hour))
		if !iat.IsZero() {
			claims.IssuedAt = jwt.NewNumericDate(iat)
		}
		tok, err := auth.Sign(claims)
		require.NoError(t, err)
		return tok
	}
	old := signed("alice", "acme", now.Add(-time.Minute))
	sc := openSSE(t, c, url, old)
	require.Equal(t, http.StatusOK, sc.resp.StatusCode)
	waitFor(t, "stream", func() bool { return reg.Status().Active == 1 })
	_, err := reg.Revoke(context.Background(), streamauth.Selector{Subject: "alice"})
	require.NoError(t, err)
	sc.until(t, "event: auth_revoked")

	tests := []struct {
		name   string
		token  string
		status int
	}{
		{"same token reconnects", old, http.StatusUnauthorized},
		{"token without iat", signed("alice", "acme", time.Time{}), http.StatusUnauthorized},
		{"token issued after the revocation", signed("alice", "acme", now.Add(2*time.Second)), http.StatusOK},
		{"other user", signed("bob", "acme", now.Add(-time.Minute)), http.StatusOK},
	}
	for _, tt := range tests {
		s := openSSE(t, c, url, tt.token)
		assert.Equal(t, tt.status, s.resp.StatusCode, tt.name)
		if tt.status == http.StatusUnauthorized {
			body, _ := s.rest()
			assert.Contains(t, body, `"reason":"token_revoked"`, tt.name)
		}
		s.close()
	}

	// Without revocation memory, Revoke only drops streams.
	reg2 := newRegistry(t, streamauth.WithRevocationMemory(-1))
	url2 := sseServer(t, auth, reg2, streamauth.ForwardSSE)
	_, err = reg2.Revoke(context.Background(), streamauth.Selector{Subject: "alice"})
	require.NoError(t, err)
	s := openSSE(t, c, url2, old)
	assert.Equal(t, http.StatusOK, s.resp.StatusCode)
}
