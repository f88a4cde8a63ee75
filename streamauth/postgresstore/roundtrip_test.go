package postgresstore_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening/internal/testenv"
	"github.com/systembuilderhub/hardening/streamauth"
)

// counter counts the statements sent through the connections it is
// configured on.
type counter struct{ n atomic.Int64 }

func (c *counter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	c.n.Add(1)
	return ctx
}

func (c *counter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// TestOneRoundTripPerCall: Add and Load are one statement each, as the
// package doc's table says, Load also when it deletes expired rows.
func TestOneRoundTripPerCall(t *testing.T) {
	p := testenv.PostgresKit(t)
	cfg, err := pgx.ParseConfig(p.URL)
	require.NoError(t, err)
	c := &counter{}
	cfg.Tracer = c
	db := sqlx.NewDb(stdlib.OpenDB(*cfg), "pgx")
	t.Cleanup(func() { _ = db.Close() })
	s := newStore(t, db)
	ctx := context.Background()
	t0 := time.Now()
	for i := range 2 { // the second call runs the cached statement
		before := c.n.Load()
		require.NoError(t, s.Add(ctx, streamauth.Revocation{Subject: "alice", RevokedAt: t0, ExpiresAt: t0.Add(time.Minute)}))
		require.NoError(t, s.Add(ctx, streamauth.Revocation{Tenant: "acme", RevokedAt: t0, ExpiresAt: t0.Add(time.Hour)}))
		assert.Equal(t, int64(2), c.n.Load()-before, "two Adds, call %d", i)
		before = c.n.Load()
		revs, err := s.Load(ctx, t0.Add(2*time.Minute)) // alice's has expired: deleted
		require.NoError(t, err)
		assert.Len(t, revs, 1)
		assert.Equal(t, int64(1), c.n.Load()-before, "Load, call %d", i)
	}
}
