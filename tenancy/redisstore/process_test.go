package redisstore_test

import (
	"os"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening/tenancy/redisstore"
	"github.com/systembuilderhub/hardening/tenancy/storetest"

	"github.com/systembuilderhub/hardening/internal/testenv"
)

const (
	helperURL    = "TENANCY_REDIS_HELPER_URL"
	helperPrefix = "TENANCY_REDIS_HELPER_PREFIX"
)

// TestHelperProcess is not a test: TestCrossProcess runs the test binary
// again with helperURL set, and this function is the child's work
// (storetest.CrossProcessChild on the shared Redis).
func TestHelperProcess(t *testing.T) {
	url := os.Getenv(helperURL)
	if url == "" {
		return
	}
	opt, err := redis.ParseURL(url)
	require.NoError(t, err)
	opt.PoolSize = storetest.CrossRacers
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	s, err := redisstore.New(rdb, redisstore.WithPrefix(os.Getenv(helperPrefix)), redisstore.WithRequestTime())
	require.NoError(t, err)
	storetest.CrossProcessChild(s)
}

// TestCrossProcess: 4 processes race on one Redis for the slots of a
// concurrency limit of 5, the burst of a rate and 1,000 reservations
// against a budget that fits 100.
func TestCrossProcess(t *testing.T) {
	srv := testenv.Redis(t)
	storetest.CrossProcess(t, newStore(t, srv, redisstore.WithRequestTime()), helperURL+"="+srv.URL, helperPrefix+"="+srv.Prefix)
}
