package redisstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/systembuilderhub/hardening/idempotency"
	"github.com/systembuilderhub/hardening/idempotency/redisstore"
	"github.com/systembuilderhub/hardening/idempotency/storetest"
	"github.com/systembuilderhub/hardening/internal/testenv"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func newStore(t testing.TB) (*redisstore.Store, *testenv.RedisServer) {
	srv := testenv.Redis(t)
	s, err := redisstore.New(srv.Client, redisstore.WithPrefix(srv.Prefix))
	require.NoError(t, err)
	return s, srv
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) idempotency.Store { s, _ := newStore(t); return s })
}

func TestNewValidates(t *testing.T) {
	_, err := redisstore.New(nil)
	require.Error(t, err)
	srv := testenv.Redis(t)
	_, err = redisstore.New(srv.Client, redisstore.WithPrefix("bad{"))
	require.Error(t, err)
	_, err = redisstore.New(srv.Client, redisstore.WithPrefix("bad}"))
	require.Error(t, err)
	_, err = redisstore.New(srv.Client, nil)
	require.Error(t, err, "a nil option is refused, not a panic")
}

// TestConformanceCluster runs the suite on a Redis Cluster: every script
// touches one hash-tagged key, and Stats scans every master.
func TestConformanceCluster(t *testing.T) {
	srv := testenv.RedisCluster(t)
	n := 0
	storetest.Run(t, func(t *testing.T) idempotency.Store {
		n++ // each store gets its own prefix, so Stats counts only its keys
		s, err := redisstore.New(srv.Client, redisstore.WithPrefix(fmt.Sprintf("%s%d:", srv.Prefix, n)))
		require.NoError(t, err)
		return s
	})
}

func TestStatsPrefixIsLiteral(t *testing.T) {
	srv := testenv.Redis(t)
	star, err := redisstore.New(srv.Client, redisstore.WithPrefix(srv.Prefix+"a*:"))
	require.NoError(t, err)
	other, err := redisstore.New(srv.Client, redisstore.WithPrefix(srv.Prefix+"ab:"))
	require.NoError(t, err)
	ctx := context.Background()
	now := time.Now()
	_, err = other.Claim(ctx, idempotency.ClaimRequest{Key: "k", Fingerprint: "fp", Owner: "o", Now: now, LockTimeout: time.Second, TTL: time.Hour})
	require.NoError(t, err)
	st, err := star.Stats(ctx, now)
	require.NoError(t, err)
	assert.Zero(t, st.Keys, "a glob character in the prefix matches only itself")
	st, err = other.Stats(ctx, now)
	require.NoError(t, err)
	assert.Equal(t, idempotency.Stats{Keys: 1, InFlight: 1}, st)
}
