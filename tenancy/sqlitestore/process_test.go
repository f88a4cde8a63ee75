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

func TestCrossProcess(t *testing.T) {
	db, path := testenv.SQLiteFile(t)
	storetest.CrossProcess(t, helperEnv+"="+path)
	var rows int
	require.NoError(t, db.Get(&rows, `SELECT count(*) FROM hardening_active_previews WHERE tenant_id = 'shared'`))
	assert.Equal(t, storetest.CrossSlotLimit, rows)
	var sum int64
	require.NoError(t, db.Get(&sum, `SELECT SUM(amount_micros) FROM hardening_llm_reservations WHERE tenant_id = 'shared'`))
	assert.Equal(t, int64(storetest.CrossBudget), sum)
}
