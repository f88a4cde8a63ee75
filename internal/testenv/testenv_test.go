package testenv_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening/internal/testenv"
	"github.com/systembuilderhub/hardening/migrate"
)

func TestRedisGivesEachTestItsOwnPrefix(t *testing.T) {
	var prefixes []string
	for _, name := range []string{"a", "b"} {
		t.Run(name, func(t *testing.T) {
			srv := testenv.Redis(t)
			ctx := context.Background()
			assert.True(t, strings.HasPrefix(srv.Prefix, "hardening-test:"))
			require.NoError(t, srv.Client.Set(ctx, srv.Prefix+"k", "v", 0).Err())
			second := srv.NewClient(t)
			got, err := second.Get(ctx, srv.Prefix+"k").Result()
			require.NoError(t, err)
			assert.Equal(t, "v", got)
			assert.Equal(t, srv.Mini == nil, srv.Real)
			prefixes = append(prefixes, srv.Prefix)
		})
	}
	require.Len(t, prefixes, 2)
	assert.NotEqual(t, prefixes[0], prefixes[1])
}

func TestSQLiteIsMigrated(t *testing.T) {
	db := testenv.SQLite(t)
	st, err := migrate.StatusOf(context.Background(), db)
	require.NoError(t, err)
	assert.True(t, st.AtHead())
	var fk int
	require.NoError(t, db.Get(&fk, "PRAGMA foreign_keys"))
	assert.Equal(t, 1, fk)
	var mode string
	require.NoError(t, db.Get(&mode, "PRAGMA journal_mode"))
	assert.Equal(t, "wal", mode)
}

func TestRedisClusterCleansUp(t *testing.T) {
	srv := testenv.RedisCluster(t)
	ctx := context.Background()
	// Keys in two different slots, and two sharing one hash tag.
	for _, k := range []string{"a", "b", "{t}x", "{t}y"} {
		require.NoError(t, srv.Client.Set(ctx, srv.Prefix+k, "v", 0).Err())
	}
	n, err := srv.Client.Exists(ctx, srv.Prefix+"a").Result()
	require.NoError(t, err)
	assert.EqualValues(t, 1, n)
}

func TestPostgresKitIsMigrated(t *testing.T) {
	if _, err := migrate.KitMigrations(migrate.Postgres); err != nil {
		// Only on a branch before the stores' migrate/sql/postgres files.
		t.Skipf("the kit has no Postgres migrations yet: %v", err)
	}
	p := testenv.PostgresKit(t)
	ctx := context.Background()
	st, err := migrate.StatusOf(ctx, p.Open(t))
	require.NoError(t, err)
	assert.True(t, st.AtHead(), st.String())
	var n int
	require.NoError(t, p.DB.GetContext(ctx, &n, "SELECT count(*) FROM hardening_schema_migrations WHERE set_name = 'kit'"))
	assert.Positive(t, n)
}
