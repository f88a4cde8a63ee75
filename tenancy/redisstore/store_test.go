package redisstore_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening/internal/testenv"
	"github.com/systembuilderhub/hardening/tenancy"
	"github.com/systembuilderhub/hardening/tenancy/redisstore"
	"github.com/systembuilderhub/hardening/tenancy/storetest"
)

func newStore(t testing.TB, srv *testenv.RedisServer, opts ...redisstore.Option) *redisstore.Store {
	s, err := redisstore.New(srv.Client, append([]redisstore.Option{redisstore.WithPrefix(srv.Prefix)}, opts...)...)
	require.NoError(t, err)
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) tenancy.Store {
		return newStore(t, testenv.Redis(t), redisstore.WithRequestTime())
	})
}

// TestConformanceCluster runs the suite on a Redis Cluster: every script
// touches only keys of one hash slot (the tenant's).
func TestConformanceCluster(t *testing.T) {
	storetest.Run(t, func(t *testing.T) tenancy.Store {
		srv := testenv.RedisCluster(t)
		s, err := redisstore.New(srv.Client, redisstore.WithPrefix(srv.Prefix), redisstore.WithRequestTime())
		require.NoError(t, err)
		return s
	})
}
