package redisstore_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening/internal/testenv"
	"github.com/systembuilderhub/hardening/previewsec/keystoretest"
	"github.com/systembuilderhub/hardening/previewsec/redisstore"
)

// TestConformanceCluster runs the suite on a Redis Cluster (REDIS_CLUSTER_ADDRS;
// CI starts one): every script's keys share a hash tag.
func TestConformanceCluster(t *testing.T) {
	keystoretest.Run(t, func(t *testing.T) (keystoretest.Store, keystoretest.Store) {
		srv := testenv.RedisCluster(t)
		a, err := redisstore.New(srv.Client, redisstore.WithKeyPrefix(srv.Prefix))
		require.NoError(t, err)
		b, err := redisstore.New(srv.Client, redisstore.WithKeyPrefix(srv.Prefix))
		require.NoError(t, err)
		return a, b
	})
}
