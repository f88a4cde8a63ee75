package sqlitestore_test

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/systembuilderhub/hardening/internal/testenv"
	"github.com/systembuilderhub/hardening/previewsec/keystoretest"
	"github.com/systembuilderhub/hardening/previewsec/sqlitestore"
)

func TestMain(m *testing.M) {
	if os.Getenv("PREVIEWSEC_HELPER_DB") != "" {
		os.Exit(helperProcess())
	}
	goleak.VerifyTestMain(m)
}

func TestConformance(t *testing.T) {
	keystoretest.Run(t, func(t *testing.T) (keystoretest.Store, keystoretest.Store) {
		db, path := testenv.SQLiteFile(t)
		a, err := sqlitestore.New(db)
		require.NoError(t, err)
		b, err := sqlitestore.New(testenv.OpenSQLite(t, path)) // a second pool: another replica
		require.NoError(t, err)
		return a, b
	})
}

func TestNewRejectsNil(t *testing.T) {
	_, err := sqlitestore.New(nil)
	assert.Error(t, err)
}

// helperProcess runs in a child: keystoretest.RotateChild on the shared
// file.
func helperProcess() int {
	db, err := sqlitestoreOpen(context.Background(), os.Getenv("PREVIEWSEC_HELPER_DB"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer db.Close()
	s, _ := sqlitestore.New(db)
	return keystoretest.RotateChild(s)
}

// TestProcessesRotateToOneKey runs several OS processes that rotate on one
// SQLite file at the same instant: they all end with the same key.
func TestProcessesRotateToOneKey(t *testing.T) {
	_, path := testenv.SQLiteFile(t)
	keystoretest.RotateInProcesses(t, 4, "PREVIEWSEC_HELPER_DB="+path)
	db := testenv.OpenSQLite(t, path)
	var count int
	require.NoError(t, db.Get(&count, `SELECT count(*) FROM hardening_preview_keys`))
	assert.Equal(t, 1, count)
}
