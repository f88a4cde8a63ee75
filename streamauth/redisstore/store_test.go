package redisstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/systembuilderhub/hardening/internal/testenv"
	"github.com/systembuilderhub/hardening/streamauth"
	"github.com/systembuilderhub/hardening/streamauth/redisstore"
	"github.com/systembuilderhub/hardening/streamauth/storetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) streamauth.RevocationStore {
		srv := testenv.Redis(t)
		s, err := redisstore.New(srv.Client, redisstore.WithPrefix(srv.Prefix))
		require.NoError(t, err)
		return s
	})
}

// TestReplicas: two clients on one Redis stand for two replicas, or for one
// process before and after a restart.
func TestReplicas(t *testing.T) {
	storetest.RunReplicas(t, func(t *testing.T) (streamauth.RevocationStore, streamauth.RevocationStore) {
		srv := testenv.Redis(t)
		a, err := redisstore.New(srv.Client, redisstore.WithPrefix(srv.Prefix))
		require.NoError(t, err)
		b, err := redisstore.New(srv.NewClient(t), redisstore.WithPrefix(srv.Prefix))
		require.NoError(t, err)
		return a, b
	})
}

// TestConformanceCluster runs the suite on a Redis Cluster (CI provides one
// through REDIS_CLUSTER_ADDRS): each script's keys share one slot.
func TestConformanceCluster(t *testing.T) {
	srv := testenv.RedisCluster(t)
	storetest.Run(t, func(t *testing.T) streamauth.RevocationStore {
		s, err := redisstore.New(srv.Client, redisstore.WithPrefix(srv.Prefix+t.Name()+":"))
		require.NoError(t, err)
		return s
	})
	storetest.RunReplicas(t, func(t *testing.T) (streamauth.RevocationStore, streamauth.RevocationStore) {
		a, err := redisstore.New(srv.Client, redisstore.WithPrefix(srv.Prefix+t.Name()+":"))
		require.NoError(t, err)
		b, err := redisstore.New(srv.Client, redisstore.WithPrefix(srv.Prefix+t.Name()+":"))
		require.NoError(t, err)
		return a, b
	})
}

// TestKeysExpireWithTheRevocation: the keys share the hash tag and the
// prefix, and carry the revocation memory as their TTL; once Redis expired
// the entry, Load forgets it and removes it from the index.
func TestKeysExpireWithTheRevocation(t *testing.T) {
	srv := testenv.Redis(t)
	s, err := redisstore.New(srv.Client, redisstore.WithPrefix(srv.Prefix))
	require.NoError(t, err)
	ctx := context.Background()
	now := time.Now()
	require.NoError(t, s.Add(ctx, streamauth.Revocation{Subject: "alice", RevokedAt: now, ExpiresAt: now.Add(2 * time.Second)}))
	require.NoError(t, s.Add(ctx, streamauth.Revocation{Tenant: "acme", RevokedAt: now, ExpiresAt: now.Add(time.Hour)}))
	index := srv.Prefix + "{streamauth}:revocations"
	alice := srv.Prefix + `{streamauth}:revocation:["alice",""]`
	keys, err := srv.Client.Keys(ctx, srv.Prefix+"*").Result()
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{index, alice, srv.Prefix + `{streamauth}:revocation:["","acme"]`}, keys)
	ttl := srv.Client.PTTL(ctx, alice).Val()
	assert.True(t, ttl > time.Second && ttl <= 2*time.Second, "alice's TTL %v", ttl)
	ttl = srv.Client.PTTL(ctx, index).Val()
	assert.True(t, ttl > 59*time.Minute && ttl <= time.Hour, "index TTL %v", ttl)

	if srv.Mini != nil {
		srv.Mini.FastForward(3 * time.Second)
	} else {
		time.Sleep(2100 * time.Millisecond)
	}
	got, err := s.Load(ctx, now) // on the registry's clock alice has not expired: Redis's TTL decides
	require.NoError(t, err)
	require.Len(t, got, 1)
	assert.Equal(t, "acme", got[0].Tenant)
	n, err := srv.Client.SCard(ctx, index).Result()
	require.NoError(t, err)
	assert.EqualValues(t, 1, n, "the expired member left the index")
}

func TestNewNil(t *testing.T) {
	_, err := redisstore.New(nil)
	require.Error(t, err)
}
