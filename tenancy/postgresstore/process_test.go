package postgresstore_test

import (
	"os"
	"testing"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening/tenancy/postgresstore"
	"github.com/systembuilderhub/hardening/tenancy/storetest"
)

const helperEnv = "TENANCY_POSTGRES_HELPER_URL"

// TestHelperProcess is not a test: TestCrossProcess runs the test binary
// again with helperEnv set, and this function is the child's work
// (storetest.CrossProcessChild on the shared schema).
func TestHelperProcess(t *testing.T) {
	u := os.Getenv(helperEnv)
	if u == "" {
		return
	}
	db, err := sqlx.Open("pgx", u)
	require.NoError(t, err)
	defer db.Close()
	s, err := postgresstore.New(db)
	require.NoError(t, err)
	db.SetMaxOpenConns(poolSize)
	storetest.CrossProcessChild(s)
}

// TestCrossProcess: 4 processes, connected as an application role without
// BYPASSRLS, race on one schema for the slots of a concurrency limit of 5,
// the burst of a rate and 1,000 reservations against a budget that fits
// 100.
func TestCrossProcess(t *testing.T) {
	p := migrated(t)
	app := p.AppRole(t)
	storetest.CrossProcess(t, newStore(t, p.DB), helperEnv+"="+app.URL)
	var rows int
	require.NoError(t, p.DB.Get(&rows, `SELECT count(*) FROM hardening_quota_slots WHERE tenant_id = 'shared'`))
	assert.Equal(t, storetest.CrossSlotLimit, rows)
	require.NoError(t, p.DB.Get(&rows, `SELECT count(*) FROM hardening_quota_reservations WHERE tenant_id = 'shared'`))
	assert.Equal(t, storetest.CrossBudgetLimit/storetest.CrossAmount, rows)
}
