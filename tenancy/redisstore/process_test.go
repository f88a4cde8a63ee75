package redisstore_test

import (
	"context"
	"os"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening/tenancy"
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
	s, err := redisstore.New(rdb, redisstore.WithPrefix(os.Getenv(helperPrefix)))
	require.NoError(t, err)
	storetest.CrossProcessChild(s)
}

func TestCrossProcess(t *testing.T) {
	srv := testenv.Redis(t)
	storetest.CrossProcess(t, helperURL+"="+srv.URL, helperPrefix+"="+srv.Prefix)
	s := newStore(t, srv)
	u, err := s.Usage(context.Background(), "shared", storetest.T0, tenancy.DefaultLimits())
	require.NoError(t, err)
	assert.Equal(t, int64(storetest.CrossSlotLimit), u.ActivePreviews)
	assert.Equal(t, storetest.CrossBudget, u.LLMReserved)
}
