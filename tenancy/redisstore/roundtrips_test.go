package redisstore_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening/internal/testenv"
	"github.com/systembuilderhub/hardening/tenancy/storetest"
)

// TestRoundTrips pins each quota decision to one round trip (one script).
func TestRoundTrips(t *testing.T) {
	srv := testenv.Redis(t)
	counter := testenv.CountRedis(srv.Client)
	var cmds []string
	trips := storetest.RoundTrips(t, newStore(t, srv), counter.Reset, func() int {
		cmds = append(cmds, counter.Commands())
		return counter.RoundTrips()
	})
	for name, n := range trips {
		require.Equal(t, 1, n, "%s decision: %v", name, cmds)
	}
}
