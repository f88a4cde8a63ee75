package sqlitestore_test

import (
	"testing"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/systembuilderhub/hardening/idempotency"
	"github.com/systembuilderhub/hardening/idempotency/sqlitestore"
	"github.com/systembuilderhub/hardening/idempotency/storetest"
	"github.com/systembuilderhub/hardening/internal/testenv"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func newStore(t testing.TB) *sqlitestore.Store {
	s, err := sqlitestore.New(newStoreDB(t))
	require.NoError(t, err)
	return s
}

func newStoreDB(t testing.TB) *sqlx.DB { return testenv.SQLite(t) }

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) idempotency.Store { return newStore(t) })
}

func TestNewRejectsNil(t *testing.T) {
	_, err := sqlitestore.New(nil)
	require.Error(t, err)
}
