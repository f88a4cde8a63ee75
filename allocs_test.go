//go:build !race

package hardening_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening"
)

// The caller's context costs one allocation to store and none to read,
// on every authenticated request (the race detector's instrumentation
// allocates: not run with -race).
func TestCallerContextAllocations(t *testing.T) {
	c := hardening.Caller{Subject: "alice", Tenant: "acme", Roles: []string{"admin"}, ExpiresAt: time.Now()}
	ctx := context.Background()
	require.Equal(t, 1.0, testing.AllocsPerRun(100, func() { ctx = hardening.WithCaller(context.Background(), c) }), "WithCaller")
	require.Zero(t, testing.AllocsPerRun(100, func() { _, _ = hardening.CallerFrom(ctx) }), "CallerFrom")
	got, ok := hardening.CallerFrom(ctx)
	require.True(t, ok)
	require.Equal(t, c, got)
}
