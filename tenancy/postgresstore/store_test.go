package postgresstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/systembuilderhub/hardening/internal/testenv"
	"github.com/systembuilderhub/hardening/tenancy"
	"github.com/systembuilderhub/hardening/tenancy/postgresstore"
	"github.com/systembuilderhub/hardening/tenancy/storetest"
)

// poolSize bounds each test pool: the concurrency suites start 1,000
// goroutines, and the server is shared with other tests.
const poolSize = 16

// migrated gives t a private schema migrated by migrate.Up.
func migrated(t testing.TB) *testenv.PostgresDB {
	t.Helper()
	p := testenv.PostgresKit(t)
	p.DB.SetMaxOpenConns(poolSize)
	return p
}

func newStore(t testing.TB, db *sqlx.DB) *postgresstore.Store {
	t.Helper()
	db.SetMaxOpenConns(poolSize)
	s, err := postgresstore.New(db)
	require.NoError(t, err)
	return s
}

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) tenancy.Store { return newStore(t, migrated(t).DB) })
}

// TestConformanceAsAppRole runs the suites as a role without BYPASSRLS:
// row-level security applies to every statement of the store, which
// scopes each of its own transactions to the request's tenant.
func TestConformanceAsAppRole(t *testing.T) {
	storetest.Run(t, func(t *testing.T) tenancy.Store { return newStore(t, migrated(t).AppRole(t).DB) })
}

func TestNewValidates(t *testing.T) {
	_, err := postgresstore.New(nil)
	require.Error(t, err)
}

// A store on a database without the schema says so at construction.
func TestNewUnmigrated(t *testing.T) {
	_, err := postgresstore.New(testenv.Postgres(t).DB)
	require.ErrorIs(t, err, postgresstore.ErrNotMigrated)
}

// A database that fails makes every check fail closed.
func TestUnavailableFailsClosed(t *testing.T) {
	db := migrated(t).DB
	s := newStore(t, db)
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

// Under REPEATABLE READ the advisory lock would not order the reads, so
// the functions refuse it rather than over-grant.
func TestRefusesOtherIsolation(t *testing.T) {
	p := migrated(t)
	db, err := sqlx.Open("pgx", p.URL+"&default_transaction_isolation=repeatable%20read")
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	s, err := postgresstore.New(db)
	require.NoError(t, err)
	_, err = s.TakeRate(t.Context(), storetest.RateReq("orders", "a", storetest.T0, 5))
	assert.ErrorContains(t, err, "READ COMMITTED")
}
