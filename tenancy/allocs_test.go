//go:build !race

package tenancy_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening"
	"github.com/systembuilderhub/hardening/tenancy"
)

// The common path's allocations, pinned so that a change adding one
// fails (the race detector's instrumentation allocates: not run with
// -race).
func TestCommonPathAllocations(t *testing.T) {
	h := http.Header{}
	res := tenancy.RateResult{Allowed: true, Quota: "snapshots", Limit: 10, Remaining: 9, Period: time.Minute, ResetAfter: 6 * time.Second}
	require.Equal(t, 2.0, testing.AllocsPerRun(100, func() { tenancy.SetRateLimitHeaders(h, res) }), "SetRateLimitHeaders")
	require.Equal(t, `"snapshots";q=10;w=60`, h.Get("RateLimit-Policy"))
	require.Equal(t, `"snapshots";r=9;t=6`, h.Get("RateLimit"))

	ctx := context.Background()
	require.Equal(t, 1.0, testing.AllocsPerRun(100, func() { ctx = tenancy.WithTenant(context.Background(), "acme") }), "WithTenant")
	require.Zero(t, testing.AllocsPerRun(100, func() { _, _ = tenancy.FromContext(ctx) }), "FromContext")

	// Behind authentication the tenant middleware finds the Caller's
	// tenant in the context already and passes the request on as it is.
	m, err := tenancy.New()
	require.NoError(t, err)
	var seen *http.Request
	handler := m.Handler(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { seen = r }))
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r = r.WithContext(hardening.WithCaller(r.Context(), hardening.Caller{Tenant: "acme", Subject: "alice"}))
	w := httptest.NewRecorder()
	require.Zero(t, testing.AllocsPerRun(100, func() { handler.ServeHTTP(w, r) }), "tenant middleware behind RequireCaller")
	require.Same(t, r, seen)
	id, ok := tenancy.FromContext(seen.Context())
	require.True(t, ok)
	require.Equal(t, tenancy.ID("acme"), id)
}
