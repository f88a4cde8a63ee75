package postgresstore_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening/internal/testenv"
	"github.com/systembuilderhub/hardening/streamauth"
)

// TestRevocationDropsStreamOnOtherReplica: registries on two pools of one
// schema, refreshing every second, without a Broadcaster: a revocation on
// replica a drops alice's open stream on replica b within the refresh
// interval (1s; asserted with a generous liveness bound).
func TestRevocationDropsStreamOnOtherReplica(t *testing.T) {
	p := testenv.PostgresKit(t)
	auth, err := streamauth.NewJWT([]byte("postgresstore-test-secret-0123456789"))
	require.NoError(t, err)
	newReg := func(s streamauth.RevocationStore) *streamauth.Registry {
		reg, err := streamauth.NewRegistry(streamauth.WithRevocationStore(s), streamauth.WithKeepAlive(-1),
			streamauth.WithRevocationRefresh(time.Second))
		require.NoError(t, err)
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			assert.NoError(t, reg.Close(ctx))
		})
		return reg
	}
	a, b := newReg(newStore(t, p.DB)), newReg(newStore(t, p.Open(t)))
	h, err := streamauth.SSE(auth, b, streamauth.ForwardSSE)
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	c := streamauth.Claims{Tenant: "acme"}
	c.Subject = "alice"
	c.IssuedAt = jwt.NewNumericDate(time.Now().Add(-time.Minute))
	c.ExpiresAt = jwt.NewNumericDate(time.Now().Add(time.Hour))
	tok, err := auth.Sign(c)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Eventually(t, func() bool { return len(b.Streams()) == 1 }, 5*time.Second, 5*time.Millisecond)

	start := time.Now()
	n, err := a.Revoke(context.Background(), streamauth.Selector{Subject: "alice"})
	require.NoError(t, err)
	assert.Zero(t, n, "replica a has no stream of alice")
	require.Eventually(t, func() bool { return len(b.Streams()) == 0 }, 3*time.Second, 5*time.Millisecond,
		"replica b still serves alice's stream")
	t.Logf("dropped on the other replica after %v", time.Since(start))
}
