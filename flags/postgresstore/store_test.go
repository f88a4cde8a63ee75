package postgresstore_test

import (
	"context"
	"os"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/systembuilderhub/hardening/flags"
	"github.com/systembuilderhub/hardening/flags/postgresstore"
	"github.com/systembuilderhub/hardening/flags/storetest"
	"github.com/systembuilderhub/hardening/internal/testenv"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newStore(t testing.TB, db *sqlx.DB, opts ...postgresstore.Option) *postgresstore.Store {
	t.Helper()
	s, err := postgresstore.New(db, opts...)
	require.NoError(t, err)
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) flags.Store { return newStore(t, testenv.PostgresKit(t).DB) })
}

// TestReplicas: two connection pools on one schema stand for two replicas.
func TestReplicas(t *testing.T) {
	storetest.RunReplicas(t, func(t *testing.T) (flags.Store, flags.Store) {
		p := testenv.PostgresKit(t)
		return newStore(t, p.DB), newStore(t, p.Open(t))
	})
}

func TestNewNil(t *testing.T) {
	_, err := postgresstore.New(nil)
	require.Error(t, err)
}

// TestNewUnmigrated: a store on a schema without the flag tables says so at
// construction.
func TestNewUnmigrated(t *testing.T) {
	p := testenv.Postgres(t)
	_, err := postgresstore.New(p.DB)
	require.ErrorContains(t, err, "migrations")
}

// TestOptions: the poll interval of the fallback is bounded by the kit's
// 1 s notification bound; a nil option is ignored.
func TestOptions(t *testing.T) {
	p := testenv.PostgresKit(t)
	for _, d := range []time.Duration{0, -time.Second, 2 * time.Second} {
		_, err := postgresstore.New(p.DB, postgresstore.WithPollInterval(d))
		assert.ErrorContains(t, err, "poll interval", d)
	}
	_, err := postgresstore.New(p.DB, nil, postgresstore.WithPollInterval(time.Second))
	require.NoError(t, err)
}

const envURL = "FLAGS_POSTGRESSTORE_TEST_URL"

// TestCrossProcess: three OS processes toggle one flag on one schema while
// this process watches: the audit chains and the watcher sees the last
// value within 1s.
func TestCrossProcess(t *testing.T) {
	p := testenv.PostgresKit(t)
	storetest.RunCrossProcess(t, newStore(t, p.DB), 3, 10, envURL+"="+p.URL)
}

func TestHelperProcess(t *testing.T) {
	storetest.HelperProcess(t, func(t *testing.T) flags.Store {
		db, err := sqlx.Open("pgx", os.Getenv(envURL))
		require.NoError(t, err)
		t.Cleanup(func() { _ = db.Close() })
		return newStore(t, db)
	})
}

// TestFailedAuditRollsBackTheChange: the audit record is written in the
// toggle's transaction, so a change whose record cannot be written does
// not happen (value and version unchanged).
func TestFailedAuditRollsBackTheChange(t *testing.T) {
	p := testenv.PostgresKit(t)
	s := newStore(t, p.DB)
	ctx := context.Background()
	_, err := s.Toggle(ctx, flags.ToggleRequest{Flag: "x", Value: true, By: "alice", At: time.Now()})
	require.NoError(t, err)
	v0, err := s.Version(ctx)
	require.NoError(t, err)
	_, err = p.DB.Exec(`ALTER TABLE hardening_flag_audit ADD CONSTRAINT no_mallory CHECK (changed_by <> 'mallory')`)
	require.NoError(t, err)
	_, err = s.Toggle(ctx, flags.ToggleRequest{Flag: "x", Value: false, By: "mallory", At: time.Now()})
	require.ErrorContains(t, err, "no_mallory")
	st, err := s.Load(ctx)
	require.NoError(t, err)
	assert.Equal(t, v0, st.Version)
	assert.Equal(t, []flags.Value{{Flag: "x", Value: true}}, st.Values)
}
