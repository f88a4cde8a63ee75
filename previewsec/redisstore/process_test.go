package redisstore_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening/internal/testenv"
	"github.com/systembuilderhub/hardening/previewsec/keystoretest"
	"github.com/systembuilderhub/hardening/previewsec/redisstore"
)

// helperProcess runs in a child: keystoretest.RotateChild on the shared
// Redis.
func helperProcess(url, prefix string) int {
	opt, err := redis.ParseURL(url)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	c := redis.NewClient(opt)
	defer c.Close()
	s, err := redisstore.New(c, redisstore.WithKeyPrefix(prefix))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	return keystoretest.RotateChild(s)
}

// TestProcessesRotateToOneKey: several OS processes rotating on one Redis
// at the same instant end with one key.
func TestProcessesRotateToOneKey(t *testing.T) {
	srv := testenv.Redis(t)
	keystoretest.RotateInProcesses(t, 4, "PREVIEWSEC_HELPER_REDIS="+srv.URL, "PREVIEWSEC_HELPER_PREFIX="+srv.Prefix)
	s, err := redisstore.New(srv.Client, redisstore.WithKeyPrefix(srv.Prefix))
	require.NoError(t, err)
	keys, err := s.Keys(context.Background(), time.Time{})
	require.NoError(t, err)
	assert.Len(t, keys, 1)
}
