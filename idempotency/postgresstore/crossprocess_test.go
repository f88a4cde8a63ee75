package postgresstore_test

import (
	"context"
	"os"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver
	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening/idempotency/postgresstore"
	"github.com/systembuilderhub/hardening/idempotency/storetest"
	"github.com/systembuilderhub/hardening/internal/testenv"
)

const envURL = "IDEMPOTENCY_TEST_POSTGRES_URL"

func init() {
	// Runs before TestMain: a re-executed helper never reaches the tests.
	storetest.MaybeHelperProcess(func() (storetest.Backend, error) {
		db, err := sqlx.Open("pgx", os.Getenv(envURL))
		if err != nil {
			return storetest.Backend{}, err
		}
		db.SetMaxOpenConns(10)
		b, err := backend(db)
		b.Close = func() { _ = db.Close() }
		return b, err
	})
}

// backend counts executions in a side table the test creates.
func backend(db *sqlx.DB) (storetest.Backend, error) {
	s, err := postgresstore.New(db)
	return storetest.Backend{
		Store: s,
		Executed: func(ctx context.Context, key string) error {
			_, err := db.ExecContext(ctx, `INSERT INTO test_executions (k) VALUES ($1)`, key)
			return err
		},
	}, err
}

func crossProcessConfig(t *testing.T) storetest.CrossProcessConfig {
	p := testenv.PostgresKit(t)
	_, err := p.DB.Exec(`CREATE TABLE test_executions (k text NOT NULL)`)
	require.NoError(t, err)
	b, err := backend(p.DB)
	require.NoError(t, err)
	return storetest.CrossProcessConfig{
		Env:     []string{envURL + "=" + p.URL},
		Backend: b,
		Executions: func(t *testing.T) map[string]int {
			var rows []struct {
				K string `db:"k"`
				N int    `db:"n"`
			}
			require.NoError(t, p.DB.Select(&rows, `SELECT k, count(*) AS n FROM test_executions GROUP BY k`))
			out := map[string]int{}
			for _, r := range rows {
				out[r.K] = r.N
			}
			return out
		},
	}
}

// TestCrossProcess: 4 OS processes on one schema, 500 requests each over
// 50 keys: every key's handler ran exactly once.
func TestCrossProcess(t *testing.T) { storetest.RunCrossProcess(t, crossProcessConfig(t)) }

// TestCrashReleasesAfterLockTimeout: a SIGKILLed holder's key is taken
// over after the lock timeout.
func TestCrashReleasesAfterLockTimeout(t *testing.T) {
	storetest.RunCrash(t, crossProcessConfig(t))
}
