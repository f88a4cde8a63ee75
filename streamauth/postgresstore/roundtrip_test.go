package postgresstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening/internal/testenv"
	"github.com/systembuilderhub/hardening/streamauth"
)

// TestOneRoundTripPerCall: Add and Load are one statement each, as the
// package doc's table says, Load also when it deletes expired rows.
func TestOneRoundTripPerCall(t *testing.T) {
	p := testenv.PostgresKit(t)
	db, c := p.OpenCounting(t)
	s := newStore(t, db)
	ctx := context.Background()
	t0 := time.Now()
	for i := range 2 { // the second call runs the cached statement
		before := c.N()
		require.NoError(t, s.Add(ctx, streamauth.Revocation{Subject: "alice", RevokedAt: t0, ExpiresAt: t0.Add(time.Minute)}))
		require.NoError(t, s.Add(ctx, streamauth.Revocation{Tenant: "acme", RevokedAt: t0, ExpiresAt: t0.Add(time.Hour)}))
		assert.Equal(t, int64(2), c.N()-before, "two Adds, call %d", i)
		before = c.N()
		revs, err := s.Load(ctx, t0.Add(2*time.Minute)) // alice's has expired: deleted
		require.NoError(t, err)
		assert.Len(t, revs, 1)
		assert.Equal(t, int64(1), c.N()-before, "Load, call %d", i)
	}
}
