package redisstore_test

import (
	"context"
	"os"
	"strconv"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening/idempotency/redisstore"
	"github.com/systembuilderhub/hardening/idempotency/storetest"
)

const (
	envURL    = "IDEMPOTENCY_TEST_REDIS_URL"
	envPrefix = "IDEMPOTENCY_TEST_REDIS_PREFIX"
)

func init() {
	// Runs before TestMain: a re-executed helper never reaches the tests.
	storetest.MaybeHelperProcess(func() (storetest.Backend, error) {
		opt, err := redis.ParseURL(os.Getenv(envURL))
		if err != nil {
			return storetest.Backend{}, err
		}
		rdb := redis.NewClient(opt)
		b, err := backend(rdb, os.Getenv(envPrefix))
		b.Close = func() { _ = rdb.Close() }
		return b, err
	})
}

// backend counts executions in a hash under the test's prefix.
func backend(rdb redis.UniversalClient, prefix string) (storetest.Backend, error) {
	s, err := redisstore.New(rdb, redisstore.WithPrefix(prefix))
	return storetest.Backend{
		Store: s,
		Executed: func(ctx context.Context, key string) error {
			return rdb.HIncrBy(ctx, prefix+"executions", key, 1).Err()
		},
	}, err
}

func crossProcessConfig(t *testing.T) storetest.CrossProcessConfig {
	_, srv := newStore(t)
	b, err := backend(srv.Client, srv.Prefix)
	require.NoError(t, err)
	return storetest.CrossProcessConfig{
		Env:     []string{envURL + "=" + srv.URL, envPrefix + "=" + srv.Prefix},
		Backend: b,
		Executions: func(t *testing.T) map[string]int {
			m, err := srv.Client.HGetAll(context.Background(), srv.Prefix+"executions").Result()
			require.NoError(t, err)
			out := make(map[string]int, len(m))
			for k, v := range m {
				out[k], err = strconv.Atoi(v)
				require.NoError(t, err)
			}
			return out
		},
	}
}

func TestCrossProcess(t *testing.T) { storetest.RunCrossProcess(t, crossProcessConfig(t)) }

func TestCrashReleasesAfterLockTimeout(t *testing.T) { storetest.RunCrash(t, crossProcessConfig(t)) }
