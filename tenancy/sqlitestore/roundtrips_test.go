package sqlitestore_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening/internal/testenv"
	"github.com/systembuilderhub/hardening/tenancy/sqlitestore"
	"github.com/systembuilderhub/hardening/tenancy/storetest"
)

// TestRoundTrips pins each quota decision to one round trip: one write
// transaction, no read before it.
func TestRoundTrips(t *testing.T) {
	db, counter := testenv.CountingSQLite(t)
	s, err := sqlitestore.New(db)
	require.NoError(t, err)
	var logs []testenv.SQLCounts
	trips := storetest.RoundTrips(t, s, counter.Reset, func() int {
		logs = append(logs, counter.Counts())
		return logs[len(logs)-1].RoundTrips()
	})
	for name, n := range trips {
		require.Equal(t, 1, n, "%s decision: %v", name, logs)
	}
}
