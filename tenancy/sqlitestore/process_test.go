package sqlitestore_test

import (
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening/internal/testenv"
	"github.com/systembuilderhub/hardening/tenancy/sqlitestore"
	"github.com/systembuilderhub/hardening/tenancy/storetest"
)

const helperEnv = "TENANCY_SQLITE_HELPER_DB"

// TestHelperProcess is not a test: TestCrossProcess runs the test binary
// again with helperEnv set, and this function is the child's work
// (storetest.CrossProcessChild on the shared SQLite file).
func TestHelperProcess(t *testing.T) {
	path := os.Getenv(helperEnv)
	if path == "" {
		return
	}
	s, err := sqlitestore.New(testenv.OpenSQLite(t, path))
	require.NoError(t, err)
	storetest.CrossProcessChild(s)
}

// TestCrossProcess: 4 processes race on one file for the slots of a
// concurrency limit of 5, the burst of a rate and 1,000 reservations
// against a budget that fits 100.
func TestCrossProcess(t *testing.T) {
	db, path := testenv.SQLiteFile(t)
	s, err := sqlitestore.New(db)
	require.NoError(t, err)
	storetest.CrossProcess(t, s, helperEnv+"="+path)
	var rows int
	require.NoError(t, db.Get(&rows, `SELECT count(*) FROM hardening_quota_slots WHERE tenant_id = 'shared'`))
	assert.Equal(t, storetest.CrossSlotLimit, rows)
	require.NoError(t, db.Get(&rows, `SELECT count(*) FROM hardening_quota_reservations WHERE tenant_id = 'shared'`))
	assert.Equal(t, storetest.CrossBudgetLimit/storetest.CrossAmount, rows)
}
