package sqlitestore_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/systembuilderhub/hardening/internal/testenv"
	"github.com/systembuilderhub/hardening/streamauth"
	"github.com/systembuilderhub/hardening/streamauth/sqlitestore"
	"github.com/systembuilderhub/hardening/streamauth/storetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) streamauth.RevocationStore {
		s, err := sqlitestore.New(testenv.SQLite(t))
		require.NoError(t, err)
		return s
	})
}

// TestReplicas: two connection pools on one file stand for two replicas,
// or for one process before and after a restart.
func TestReplicas(t *testing.T) {
	storetest.RunReplicas(t, func(t *testing.T) (streamauth.RevocationStore, streamauth.RevocationStore) {
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
