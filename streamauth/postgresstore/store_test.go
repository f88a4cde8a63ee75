package postgresstore_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/systembuilderhub/hardening/internal/testenv"
	"github.com/systembuilderhub/hardening/streamauth"
	"github.com/systembuilderhub/hardening/streamauth/postgresstore"
	"github.com/systembuilderhub/hardening/streamauth/storetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newStore(t testing.TB, db *sqlx.DB) *postgresstore.Store {
	t.Helper()
	s, err := postgresstore.New(db)
	require.NoError(t, err)
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) streamauth.RevocationStore { return newStore(t, testenv.PostgresKit(t).DB) })
}

// TestReplicas: two connection pools on one schema stand for two replicas,
// or for one process before and after a restart.
func TestReplicas(t *testing.T) {
	storetest.RunReplicas(t, func(t *testing.T) (streamauth.RevocationStore, streamauth.RevocationStore) {
		p := testenv.PostgresKit(t)
		return newStore(t, p.DB), newStore(t, p.Open(t))
	})
}

func TestNewNil(t *testing.T) {
	_, err := postgresstore.New(nil)
	require.Error(t, err)
}

// TestNewUnmigrated: a store on a schema without the table says so at
// construction.
func TestNewUnmigrated(t *testing.T) {
	_, err := postgresstore.New(testenv.Postgres(t).DB)
	require.ErrorContains(t, err, "migrations")
}

// TestConcurrentLoadAndAdd: replicas on two pools load (deleting expired
// rows) while others add, some of them to expired rows: no statement fails
// (no deadlock, no unique violation) and every live revocation is kept.
func TestConcurrentLoadAndAdd(t *testing.T) {
	p := testenv.PostgresKit(t)
	a, b := newStore(t, p.DB), newStore(t, p.Open(t))
	ctx := context.Background()
	t0 := time.UnixMilli(time.Now().UnixMilli()).UTC()
	const users = 20
	for i := range users { // expired at t0
		require.NoError(t, a.Add(ctx, streamauth.Revocation{Subject: fmt.Sprint("u", i), RevokedAt: t0.Add(-time.Hour), ExpiresAt: t0}))
	}
	var wg sync.WaitGroup
	for w := range 4 {
		s := a
		if w%2 == 1 {
			s = b
		}
		wg.Go(func() {
			for i := range users {
				if w < 2 {
					assert.NoError(t, s.Add(ctx, streamauth.Revocation{Subject: fmt.Sprint("u", i), Tenant: fmt.Sprint("w", w), RevokedAt: t0, ExpiresAt: t0.Add(time.Hour)}))
					assert.NoError(t, s.Add(ctx, streamauth.Revocation{Subject: fmt.Sprint("u", i), RevokedAt: t0, ExpiresAt: t0.Add(time.Hour)}))
				} else {
					_, err := s.Load(ctx, t0)
					assert.NoError(t, err)
				}
			}
		})
	}
	wg.Wait()
	got, err := b.Load(ctx, t0)
	require.NoError(t, err)
	assert.Len(t, got, 3*users, "u<i> with tenants w0, w1 and none, all live")
	var expired int
	require.NoError(t, p.DB.Get(&expired, `SELECT count(*) FROM hardening_stream_revocations WHERE expires_at <= $1`, t0.UnixMilli()))
	assert.Zero(t, expired, "the expired rows were deleted")
}
