package sqlitestore_test

import (
	"os"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/systembuilderhub/hardening/flags"
	"github.com/systembuilderhub/hardening/flags/sqlitestore"
	"github.com/systembuilderhub/hardening/flags/storetest"
	"github.com/systembuilderhub/hardening/internal/testenv"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newStore(t *testing.T) flags.Store {
	s, err := sqlitestore.New(testenv.SQLite(t))
	require.NoError(t, err)
	return s
}

func TestConformance(t *testing.T) { storetest.Run(t, newStore) }

// TestReplicas: two connection pools on one file stand for two replicas.
func TestReplicas(t *testing.T) {
	storetest.RunReplicas(t, func(t *testing.T) (flags.Store, flags.Store) {
		_, path := testenv.SQLiteFile(t)
		a, err := sqlitestore.New(testenv.OpenSQLite(t, path))
		require.NoError(t, err)
		b, err := sqlitestore.New(testenv.OpenSQLite(t, path))
		require.NoError(t, err)
		return a, b
	})
}

func TestNewNil(t *testing.T) {
	_, err := sqlitestore.New(nil)
	require.Error(t, err)
}

const envDB = "FLAGS_SQLITESTORE_TEST_DB"

// TestCrossProcess: three OS processes toggle one flag on one SQLite file
// while this process watches: the audit chains and the watcher sees the
// last value within 1s.
func TestCrossProcess(t *testing.T) {
	db, path := testenv.SQLiteFile(t)
	s, err := sqlitestore.New(db)
	require.NoError(t, err)
	storetest.RunCrossProcess(t, s, 3, 10, envDB+"="+path)
}

func TestHelperProcess(t *testing.T) {
	storetest.HelperProcess(t, func(t *testing.T) flags.Store {
		s, err := sqlitestore.New(testenv.OpenSQLite(t, os.Getenv(envDB)))
		require.NoError(t, err)
		return s
	})
}
