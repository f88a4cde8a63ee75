package storetest

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening"
	"github.com/systembuilderhub/hardening/streamauth"
)

// testRestart: a registry on store a revokes alice and stops; a new
// registry on store b (the same backend: the process after a restart)
// refuses alice's old token with 401 token_revoked and accepts a token
// issued after the revocation.
func testRestart(t *testing.T, a, b streamauth.RevocationStore) {
	auth, err := streamauth.NewJWT([]byte("storetest-secret-0123456789abcdef"))
	require.NoError(t, err)
	now := time.Now()
	sign := func(iat time.Time) string {
		c := streamauth.Claims{Tenant: "acme"}
		c.Subject = "alice"
		c.IssuedAt = jwt.NewNumericDate(iat)
		c.ExpiresAt = jwt.NewNumericDate(now.Add(time.Hour))
		tok, err := auth.Sign(c)
		require.NoError(t, err)
		return tok
	}
	old := sign(now.Add(-time.Minute))

	before := startRegistry(t, auth, a)
	assert.Equal(t, http.StatusOK, get(t, before, old).status, "the token opens a stream before the revocation")
	_, err = before.reg.Revoke(context.Background(), streamauth.Selector{Subject: "alice"})
	require.NoError(t, err)
	before.stop(t)

	after := startRegistry(t, auth, b)
	got := get(t, after, old)
	assert.Equal(t, http.StatusUnauthorized, got.status, "the revoked token after the restart")
	assert.Equal(t, "token_revoked", got.reason)
	assert.Equal(t, http.StatusOK, get(t, after, sign(now.Add(2*time.Second))).status, "a token issued after the revocation")
}

type server struct {
	reg *streamauth.Registry
	srv *httptest.Server
}

func startRegistry(t *testing.T, auth hardening.Authenticator, s streamauth.RevocationStore) *server {
	t.Helper()
	reg, err := streamauth.NewRegistry(streamauth.WithRevocationStore(s), streamauth.WithKeepAlive(-1))
	require.NoError(t, err)
	h, err := streamauth.SSE(auth, reg, streamauth.ForwardSSE)
	require.NoError(t, err)
	sv := &server{reg: reg, srv: httptest.NewServer(h)}
	t.Cleanup(func() { sv.stop(t) })
	return sv
}

func (sv *server) stop(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	assert.NoError(t, sv.reg.Close(ctx))
	sv.srv.Close()
}

type answer struct {
	status int
	reason string
}

// get opens a stream with tok and ends it at once.
func get(t *testing.T, sv *server, tok string) answer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, sv.srv.URL, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := sv.srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	out := answer{status: resp.StatusCode}
	if resp.StatusCode != http.StatusOK {
		var p struct{ Reason string }
		b, _ := io.ReadAll(resp.Body)
		_ = json.Unmarshal(b, &p)
		out.reason = p.Reason
	}
	return out
}
