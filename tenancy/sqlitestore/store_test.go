package sqlitestore_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/systembuilderhub/hardening/internal/testenv"
	"github.com/systembuilderhub/hardening/tenancy"
	"github.com/systembuilderhub/hardening/tenancy/sqlitestore"
	"github.com/systembuilderhub/hardening/tenancy/storetest"
)

func newStore(t testing.TB) *sqlitestore.Store {
	s, err := sqlitestore.New(testenv.SQLite(t))
	require.NoError(t, err)
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) tenancy.Store { return newStore(t) })
}

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestNewValidates(t *testing.T) {
	_, err := sqlitestore.New(nil)
	require.Error(t, err)
}

// A database that fails makes every check fail closed.
func TestUnavailableFailsClosed(t *testing.T) {
	db := testenv.SQLite(t)
	s, err := sqlitestore.New(db)
	require.NoError(t, err)
	q, err := tenancy.NewQuotas(s, tenancy.Concurrency("exports", 5, time.Minute), tenancy.Rate("orders", 5, time.Minute),
		tenancy.Budget("credits", 5, tenancy.Monthly))
	require.NoError(t, err)
	require.NoError(t, db.Close())
	ctx := tenancy.WithTenant(context.Background(), "acme")
	var un *tenancy.UnavailableError
	_, err = q.Acquire(ctx, "exports", "e")
	require.ErrorAs(t, err, &un)
	_, err = q.Allow(ctx, "orders")
	require.ErrorAs(t, err, &un)
	_, err = q.Reserve(ctx, "credits", 1)
	require.ErrorAs(t, err, &un)
}
