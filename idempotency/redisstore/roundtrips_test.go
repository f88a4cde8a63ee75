package redisstore_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening/idempotency/storetest"
	"github.com/systembuilderhub/hardening/internal/testenv"
)

// TestRoundTrips pins the cost of the common path: a first request is two
// commands (the claim and complete scripts), a replay one.
func TestRoundTrips(t *testing.T) {
	s, srv := newStore(t)
	counter := testenv.CountRedis(srv.Client)
	var cmds []string
	first, replay := storetest.RoundTrips(t, s, counter.Reset, func() int {
		cmds = append(cmds, counter.Commands())
		return counter.RoundTrips()
	})
	require.Equal(t, 2, first, "first request: %s", cmds[2])
	require.Equal(t, 1, replay, "replay: %s", cmds[3])
}
