package streamauth_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening"
	"github.com/systembuilderhub/hardening/internal/problem"
	"github.com/systembuilderhub/hardening/streamauth"
)

func wsServer(t testing.TB, auth hardening.Authenticator, reg *streamauth.Registry, h streamauth.WSHandler) string {
	t.Helper()
	hh, err := streamauth.WebSocket(auth, reg, h)
	require.NoError(t, err)
	return "ws" + strings.TrimPrefix(serve(t, hh).URL, "http")
}

func dialWS(t testing.TB, url, tok string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, url+"?access_token="+tok, &websocket.DialOptions{HTTPClient: httpClient(t)})
	require.NoError(t, err)
	require.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
	t.Cleanup(func() { _ = c.CloseNow() })
	return c
}

// readUntilClose reads messages until the server closes, returning them and
// the close error.
func readUntilClose(t testing.TB, c *websocket.Conn, d time.Duration) ([]string, websocket.CloseError) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var msgs []string
	for {
		_, b, err := c.Read(ctx)
		if err != nil {
			var ce websocket.CloseError
			require.ErrorAs(t, err, &ce, "want a close frame, got %v", err)
			return msgs, ce
		}
		msgs = append(msgs, string(b))
	}
}

func TestWebSocketRejectsBeforeUpgrade(t *testing.T) {
	t.Parallel()
	auth := newAuth(t)
	reg := newRegistry(t)
	url := wsServer(t, auth, reg, streamauth.ForwardWS)
	for _, tok := range []string{"", "bad", token(t, auth, "u", "t", time.Now().Add(-time.Second))} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, resp, err := websocket.Dial(ctx, url+"?access_token="+tok, &websocket.DialOptions{HTTPClient: httpClient(t)})
		cancel()
		require.Error(t, err)
		require.NotNil(t, resp)
		assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
		assert.Equal(t, problem.ContentType, resp.Header.Get("Content-Type"))
	}
	assert.Zero(t, reg.Status().Active)
}

// TestWebSocketPlainRequestIs426: a request that is not a WebSocket
// handshake gets a 426 problem, even with a valid token, and no stream is
// admitted.
func TestWebSocketPlainRequestIs426(t *testing.T) {
	t.Parallel()
	auth := newAuth(t)
	reg := newRegistry(t)
	url := "http" + strings.TrimPrefix(wsServer(t, auth, reg, streamauth.ForwardWS), "ws")
	tok := token(t, auth, "u", "t", time.Now().Add(time.Hour))
	tests := []struct {
		name    string
		method  string
		headers map[string]string
	}{
		{"plain GET", http.MethodGet, nil},
		{"POST with upgrade headers", http.MethodPost, map[string]string{"Connection": "Upgrade", "Upgrade": "websocket"}},
		{"upgrade to another protocol", http.MethodGet, map[string]string{"Connection": "Upgrade", "Upgrade": "h2c"}},
		{"Upgrade without Connection", http.MethodGet, map[string]string{"Upgrade": "websocket"}},
	}
	for _, tt := range tests {
		req, err := http.NewRequest(tt.method, url+"?access_token="+tok, nil)
		require.NoError(t, err)
		for k, v := range tt.headers {
			req.Header.Set(k, v)
		}
		resp, err := httpClient(t).Do(req)
		require.NoError(t, err, tt.name)
		var p map[string]any
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&p), tt.name)
		resp.Body.Close()
		assert.Equal(t, http.StatusUpgradeRequired, resp.StatusCode, tt.name)
		assert.Equal(t, problem.ContentType, resp.Header.Get("Content-Type"), tt.name)
		assert.Equal(t, "websocket", resp.Header.Get("Upgrade"), tt.name)
		assert.Equal(t, "websocket_upgrade_required", p["reason"], tt.name)
	}
	assert.Zero(t, reg.Status().Active)
	assert.Zero(t, reg.Status().ByReason[streamauth.ReasonClientClosed], "nothing was admitted and dropped")
}

func TestWebSocketExpiryCloses4001(t *testing.T) {
	t.Parallel()
	auth := newAuth(t)
	reg := newRegistry(t)
	url := wsServer(t, auth, reg, streamauth.ForwardWS)
	exp := time.Now().Add(2 * time.Second).Truncate(time.Second)
	c := dialWS(t, url, token(t, auth, "u1", "t1", exp))
	_, ce := readUntilClose(t, c, 10*time.Second)
	ended := time.Now()
	assert.Equal(t, streamauth.CloseTokenExpired, ce.Code)
	assert.Equal(t, "token_expired", ce.Reason)
	assert.False(t, ended.Before(exp))
	assert.Less(t, ended.Sub(exp), time.Second, "must close within 1s after exp")
	waitFor(t, "dropped", func() bool { return reg.Status().Active == 0 })
	assert.EqualValues(t, 1, reg.Status().ByReason[streamauth.ReasonExpired])
}

func TestWebSocketRevokeAndEvents(t *testing.T) {
	t.Parallel()
	auth := newAuth(t)
	reg := newRegistry(t)
	url := wsServer(t, auth, reg, streamauth.ForwardWS)
	c := dialWS(t, url, token(t, auth, "u1", "t1", time.Now().Add(time.Hour)))
	waitFor(t, "subscribed", func() bool {
		return reg.PublishLocal("t1", streamauth.Event{Type: "hello", Data: []byte(`{"n":1}`)}) == 1
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, b, err := c.Read(ctx)
	require.NoError(t, err)
	assert.JSONEq(t, `{"type":"event","event":"hello","data":{"n":1}}`, string(b))
	n, err := reg.Revoke(ctx, streamauth.Selector{Tenant: "t1"})
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	_, ce := readUntilClose(t, c, 5*time.Second)
	assert.Equal(t, streamauth.CloseForbidden, ce.Code)
	assert.Equal(t, "revoked", ce.Reason)
}

func TestWebSocketRefresh(t *testing.T) {
	t.Parallel()
	auth := newAuth(t)
	now := time.Now()
	tests := []struct {
		name       string
		exp        time.Time // of the refresh token
		user, tid  string
		wantClose  bool
		wantReason string
	}{
		{"extends", now.Add(time.Hour), "u1", "t1", false, ""},
		{"expired token", now.Add(-time.Minute), "u1", "t1", true, "refresh_rejected"},
		{"other user", now.Add(time.Hour), "u2", "t1", true, "refresh_rejected"},
		{"other tenant", now.Add(time.Hour), "u1", "t2", true, "tenant_mismatch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			reg := newRegistry(t)
			url := wsServer(t, auth, reg, streamauth.ForwardWS)
			exp := time.Now().Add(2 * time.Second).Truncate(time.Second)
			c := dialWS(t, url, token(t, auth, "u1", "t1", exp))
			msg, _ := json.Marshal(map[string]string{"type": "refresh", "token": token(t, auth, tt.user, tt.tid, tt.exp)})
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			require.NoError(t, c.Write(ctx, websocket.MessageText, msg))
			if tt.wantClose {
				_, ce := readUntilClose(t, c, 5*time.Second)
				assert.Equal(t, streamauth.CloseForbidden, ce.Code)
				assert.Equal(t, tt.wantReason, ce.Reason)
				assert.True(t, time.Now().Before(exp), "closed for the refresh, not the expiry")
				return
			}
			_, b, err := c.Read(ctx)
			require.NoError(t, err)
			var got struct {
				Type      string    `json:"type"`
				ExpiresAt time.Time `json:"expires_at"`
			}
			require.NoError(t, json.Unmarshal(b, &got))
			assert.Equal(t, "refreshed", got.Type)
			assert.Equal(t, tt.exp.Truncate(time.Second).Unix(), got.ExpiresAt.Unix())
			// Past the original expiry the connection is still open.
			time.Sleep(time.Until(exp) + 500*time.Millisecond)
			require.Equal(t, 1, reg.Status().WebSocket)
			require.Equal(t, 1, reg.PublishLocal("t1", streamauth.Event{Type: "still"}))
			_, b, err = c.Read(ctx)
			require.NoError(t, err)
			assert.Contains(t, string(b), `"still"`)
			require.NoError(t, c.Close(websocket.StatusNormalClosure, ""))
			waitFor(t, "client close counted", func() bool { return reg.Status().Active == 0 })
			assert.EqualValues(t, 1, reg.Status().ByReason[streamauth.ReasonClientClosed])
		})
	}
}

func TestWebSocketMessages(t *testing.T) {
	t.Parallel()
	auth := newAuth(t)
	reg := newRegistry(t)
	url := wsServer(t, auth, reg, streamauth.WSHandlerFunc(func(ctx context.Context, c *streamauth.WSConn) error {
		msgs := c.Messages()
		for {
			select {
			case <-ctx.Done():
				return nil
			case m := <-msgs:
				if err := c.Write(ctx, append([]byte("echo:"), m...)); err != nil {
					return err
				}
				if string(m) == "bye" {
					return nil
				}
			}
		}
	}))
	c := dialWS(t, url, token(t, auth, "u1", "t1", time.Now().Add(time.Hour)))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, c.Write(ctx, websocket.MessageText, []byte("hi")))
	_, b, err := c.Read(ctx)
	require.NoError(t, err)
	assert.Equal(t, "echo:hi", string(b))
	require.NoError(t, c.Write(ctx, websocket.MessageText, []byte("bye")))
	msgs, ce := readUntilClose(t, c, 5*time.Second)
	assert.Equal(t, []string{"echo:bye"}, msgs)
	assert.Equal(t, websocket.StatusNormalClosure, ce.Code)
	waitFor(t, "completed", func() bool { return reg.Status().ByReason[streamauth.ReasonCompleted] == 1 })
}

// An Authenticator without AuthenticateToken: refresh tokens are checked
// through a request carrying only the Authorization header.
func TestWebSocketRefreshWithPlainAuthenticator(t *testing.T) {
	t.Parallel()
	jwtAuth := newAuth(t)
	var sawHeader atomic.Int32
	plain := hardening.AuthenticatorFunc(func(r *http.Request) (hardening.Caller, error) {
		if r.Header.Get("Authorization") != "" && r.URL.RawQuery == "" {
			sawHeader.Add(1)
		}
		return jwtAuth.Authenticate(r)
	})
	reg := newRegistry(t)
	url := wsServer(t, plain, reg, streamauth.ForwardWS)
	c := dialWS(t, url, token(t, jwtAuth, "u1", "t1", time.Now().Add(time.Hour)))
	msg, _ := json.Marshal(map[string]string{"type": "refresh", "token": token(t, jwtAuth, "u1", "t1", time.Now().Add(2*time.Hour))})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, c.Write(ctx, websocket.MessageText, msg))
	_, b, err := c.Read(ctx)
	require.NoError(t, err)
	assert.Contains(t, string(b), `"refreshed"`)
	assert.EqualValues(t, 1, sawHeader.Load())
}

// TestWebSocketRefreshChecksRevocation: a token refused for opening a
// stream because its user was revoked is refused as a refresh too (the
// attack: a revoked 24h token moved a fresh stream's expiry to +24h).
func TestWebSocketRefreshChecksRevocation(t *testing.T) {
	t.Parallel()
	var logs logBuffer
	auth := newAuth(t)
	reg := newRegistry(t, streamauth.WithLogger(debugLogger(&logs)))
	url := wsServer(t, auth, reg, streamauth.ForwardWS)
	now := time.Now()
	revoked := signedToken(t, auth, "u1", "t1", now.Add(-time.Minute), now.Add(24*time.Hour))
	_, err := reg.Revoke(context.Background(), streamauth.Selector{Subject: "u1"})
	require.NoError(t, err)

	// A token issued after the revocation opens a stream.
	exp := now.Add(time.Hour).Truncate(time.Second)
	c := dialWS(t, url, signedToken(t, auth, "u1", "t1", now.Add(2*time.Second), exp))
	require.Equal(t, exp, reg.Streams()[0].ExpiresAt)
	msg, _ := json.Marshal(map[string]string{"type": "refresh", "token": revoked})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, c.Write(ctx, websocket.MessageText, msg))
	msgs, ce := readUntilClose(t, c, 5*time.Second)
	assert.Empty(t, msgs, "no refreshed reply")
	assert.Equal(t, streamauth.CloseForbidden, ce.Code)
	assert.Equal(t, "refresh_rejected", ce.Reason)
	assert.Contains(t, logs.String(), `"reason":"token_revoked"`)
	assert.NotContains(t, logs.String(), `"event":"refreshed"`, "the expiry was not moved")
	assert.EqualValues(t, 1, reg.Status().ByReason[streamauth.ReasonRefreshRejected])
}
