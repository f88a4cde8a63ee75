package sqlitestore_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening/idempotency/sqlitestore"
	"github.com/systembuilderhub/hardening/idempotency/storetest"
	"github.com/systembuilderhub/hardening/internal/testenv"
	"github.com/systembuilderhub/hardening/migrate"
)

const envDB = "IDEMPOTENCY_TEST_SQLITE_PATH"

func init() {
	// Runs before TestMain: a re-executed helper never reaches the tests.
	storetest.MaybeHelperProcess(func() (storetest.Backend, error) {
		db, err := migrate.OpenSQLite(context.Background(), os.Getenv(envDB), 30*time.Second)
		if err != nil {
			return storetest.Backend{}, err
		}
		return backend(db), nil
	})
}

// backend counts executions in a side table the test creates.
func backend(db *sqlx.DB) storetest.Backend {
	s, _ := sqlitestore.New(db)
	return storetest.Backend{
		Store: s,
		Executed: func(ctx context.Context, key string) error {
			_, err := db.ExecContext(ctx, `INSERT INTO test_executions (k) VALUES (?)`, key)
			return err
		},
		Close: func() { _ = db.Close() },
	}
}

func crossProcessConfig(t *testing.T) storetest.CrossProcessConfig {
	db, path := testenv.SQLiteFile(t)
	_, err := db.Exec(`CREATE TABLE test_executions (k TEXT NOT NULL)`)
	require.NoError(t, err)
	b := backend(db)
	b.Close = nil
	return storetest.CrossProcessConfig{
		Env:     []string{envDB + "=" + path},
		Backend: b,
		Executions: func(t *testing.T) map[string]int {
			rows, err := db.Query(`SELECT k, count(*) FROM test_executions GROUP BY k`)
			require.NoError(t, err)
			defer rows.Close()
			out := map[string]int{}
			for rows.Next() {
				var k string
				var n int
				require.NoError(t, rows.Scan(&k, &n))
				out[k] = n
			}
			require.NoError(t, rows.Err())
			return out
		},
	}
}

func TestCrossProcess(t *testing.T) { storetest.RunCrossProcess(t, crossProcessConfig(t)) }

func TestCrashReleasesAfterLockTimeout(t *testing.T) { storetest.RunCrash(t, crossProcessConfig(t)) }
