package postgresstore_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/systembuilderhub/hardening/internal/testenv"
	"github.com/systembuilderhub/hardening/previewsec"
	"github.com/systembuilderhub/hardening/previewsec/keystoretest"
	"github.com/systembuilderhub/hardening/previewsec/postgresstore"
)

func TestMain(m *testing.M) {
	if url := os.Getenv(helperEnv); url != "" {
		os.Exit(helperProcess(url))
	}
	goleak.VerifyTestMain(m)
}

func TestConformance(t *testing.T) {
	keystoretest.Run(t, func(t *testing.T) (keystoretest.Store, keystoretest.Store) {
		p := testenv.PostgresKit(t)
		a, err := postgresstore.New(p.DB)
		require.NoError(t, err)
		b, err := postgresstore.New(p.Open(t)) // a second pool: another replica
		require.NoError(t, err)
		return a, b
	})
}

func TestNewRejectsNil(t *testing.T) {
	_, err := postgresstore.New(nil)
	assert.Error(t, err)
}

// TestNewReportsUnmigrated: a store on a schema without 0003_previewsec is
// refused at construction, not at the first rotation.
func TestNewReportsUnmigrated(t *testing.T) {
	p := testenv.Postgres(t)
	_, err := postgresstore.New(p.DB)
	require.ErrorIs(t, err, postgresstore.ErrNotMigrated)
	// Tables without the function are not enough either.
	_, err = p.DB.Exec(`CREATE TABLE hardening_preview_keys (kid text); CREATE TABLE hardening_preview_revocations (kind text)`)
	require.NoError(t, err)
	_, err = postgresstore.New(p.DB)
	require.ErrorIs(t, err, postgresstore.ErrNotMigrated)
}

// TestNewReportsUnreachable: a database that does not answer is an error
// at construction, not ErrNotMigrated.
func TestNewReportsUnreachable(t *testing.T) {
	p := testenv.Postgres(t)
	db := p.Open(t)
	require.NoError(t, db.Close())
	_, err := postgresstore.New(db)
	require.Error(t, err)
	assert.NotErrorIs(t, err, postgresstore.ErrNotMigrated)
}

// TestKeyIDOfAnotherPeriod: a kid already stored for another period is
// ErrKeyConflict, and nothing is written.
func TestKeyIDOfAnotherPeriod(t *testing.T) {
	ctx := context.Background()
	s, err := postgresstore.New(testenv.PostgresKit(t).DB)
	require.NoError(t, err)
	start := time.Date(2030, 1, 2, 0, 0, 0, 0, time.UTC)
	k := previewsec.Key{ID: "k", PeriodStart: start, Secret: make([]byte, 32), CreatedAt: start, ExpiresAt: start.Add(time.Hour)}
	_, err = s.CreateKey(ctx, k)
	require.NoError(t, err)
	k.PeriodStart = start.Add(24 * time.Hour)
	k.ExpiresAt = k.PeriodStart.Add(time.Hour)
	_, err = s.CreateKey(ctx, k)
	require.ErrorIs(t, err, previewsec.ErrKeyConflict)
	keys, err := s.Keys(ctx, time.Time{})
	require.NoError(t, err)
	assert.Len(t, keys, 1)
}

// TestProcessesRotateToOneKey runs several OS processes that rotate on one
// schema at the same instant: they all end with the same key, and the
// table holds one.
func TestProcessesRotateToOneKey(t *testing.T) {
	p := testenv.PostgresKit(t)
	keystoretest.RotateInProcesses(t, 4, helperEnv+"="+p.URL)
	var count int
	require.NoError(t, p.DB.Get(&count, `SELECT count(*) FROM hardening_preview_keys`))
	assert.Equal(t, 1, count)
}
