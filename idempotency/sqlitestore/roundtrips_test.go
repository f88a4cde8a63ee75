package sqlitestore_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening/idempotency/sqlitestore"
	"github.com/systembuilderhub/hardening/idempotency/storetest"
	"github.com/systembuilderhub/hardening/internal/testenv"
)

// TestRoundTrips pins the cost of the common path: a first request is two
// write transactions (claim, complete) with no separate read before the
// claim, and a replay is one round trip.
func TestRoundTrips(t *testing.T) {
	db, counter := testenv.CountingSQLite(t)
	s, err := sqlitestore.New(db)
	require.NoError(t, err)
	var first, replay testenv.SQLCounts
	storetest.RoundTrips(t, s, counter.Reset, func() int {
		first, replay = replay, counter.Counts()
		return replay.RoundTrips()
	})
	require.Equal(t, 2, first.RoundTrips(), "first request: %v", first)
	require.Equal(t, 2, first.WriteTransactions, "first request: %v", first)
	require.Zero(t, first.Reads+first.Writes, "first request: %v", first)
	require.Equal(t, 1, replay.RoundTrips(), "replay: %v", replay)
}
