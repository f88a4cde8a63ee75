package redisstore_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/systembuilderhub/hardening/flags"
	"github.com/systembuilderhub/hardening/flags/redisstore"
	"github.com/systembuilderhub/hardening/flags/storetest"
	"github.com/systembuilderhub/hardening/internal/testenv"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) flags.Store {
		srv := testenv.Redis(t)
		s, err := redisstore.New(srv.Client, redisstore.WithPrefix(srv.Prefix))
		require.NoError(t, err)
		return s
	})
}

// TestReplicas: two clients on one Redis stand for two replicas.
func TestReplicas(t *testing.T) {
	storetest.RunReplicas(t, func(t *testing.T) (flags.Store, flags.Store) {
		srv := testenv.Redis(t)
		a, err := redisstore.New(srv.Client, redisstore.WithPrefix(srv.Prefix))
		require.NoError(t, err)
		b, err := redisstore.New(srv.NewClient(t), redisstore.WithPrefix(srv.Prefix))
		require.NoError(t, err)
		return a, b
	})
}

func TestKeysShareHashTagAndPrefix(t *testing.T) {
	srv := testenv.Redis(t)
	s, err := redisstore.New(srv.Client, redisstore.WithPrefix(srv.Prefix))
	require.NoError(t, err)
	ctx := context.Background()
	_, err = s.Toggle(ctx, flags.ToggleRequest{Flag: "x", Value: true, By: "u"})
	require.NoError(t, err)
	keys, err := srv.Client.Keys(ctx, srv.Prefix+"*").Result()
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{srv.Prefix + "{flags}:state", srv.Prefix + "{flags}:version", srv.Prefix + "{flags}:audit"}, keys)
	assert.Equal(t, srv.Prefix+"flags:changed", s.Channel())
}

// TestPushWithoutPolling: with polling practically off, a toggle on one
// replica reaches the other through pub/sub alone.
func TestPushWithoutPolling(t *testing.T) {
	srv := testenv.Redis(t)
	ctx := context.Background()
	def := flags.WithFlags(flags.Flag{Name: "llm.streaming"})
	newClient := func(rdb redis.UniversalClient) *flags.Client {
		s, err := redisstore.New(rdb, redisstore.WithPrefix(srv.Prefix))
		require.NoError(t, err)
		c, err := flags.New(s, def, flags.WithPollInterval(time.Hour), flags.WithMaxStaleness(time.Hour))
		require.NoError(t, err)
		require.NoError(t, c.Start(ctx))
		t.Cleanup(func() { assert.NoError(t, c.Close(context.Background())) })
		return c
	}
	a := newClient(srv.Client)
	b := newClient(srv.NewClient(t))
	channel := srv.Prefix + "flags:changed"
	require.Eventually(t, func() bool {
		n, err := srv.Client.PubSubNumSub(ctx, channel).Result()
		return err == nil && n[channel] == 2
	}, 5*time.Second, 5*time.Millisecond, "both replicas subscribe")
	_, err := a.Toggle(ctx, "llm.streaming", true, flags.Change{By: "ops"})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return b.Enabled("llm.streaming", "", false) }, time.Second, 5*time.Millisecond)
}

func TestNewNil(t *testing.T) {
	_, err := redisstore.New(nil)
	require.Error(t, err)
}

// TestConformanceCluster runs the suite on a Redis Cluster (CI provides one
// through REDIS_CLUSTER_ADDRS): the toggle script's keys share one slot.
func TestConformanceCluster(t *testing.T) {
	srv := testenv.RedisCluster(t)
	storetest.Run(t, func(t *testing.T) flags.Store {
		s, err := redisstore.New(srv.Client, redisstore.WithPrefix(srv.Prefix+t.Name()+":"))
		require.NoError(t, err)
		return s
	})
}

// TestReplicasCluster: two flag clients over a Redis Cluster; the change
// notification travels through cluster pub/sub.
func TestReplicasCluster(t *testing.T) {
	srv := testenv.RedisCluster(t)
	storetest.RunReplicas(t, func(t *testing.T) (flags.Store, flags.Store) {
		a, err := redisstore.New(srv.Client, redisstore.WithPrefix(srv.Prefix+t.Name()+":"))
		require.NoError(t, err)
		b, err := redisstore.New(srv.Client, redisstore.WithPrefix(srv.Prefix+t.Name()+":"))
		require.NoError(t, err)
		return a, b
	})
}

const (
	envURL    = "FLAGS_REDISSTORE_TEST_URL"
	envPrefix = "FLAGS_REDISSTORE_TEST_PREFIX"
)

// TestCrossProcess: three OS processes toggle one flag on one Redis while
// this process watches: the audit chains and the watcher sees the last
// value within 1s.
func TestCrossProcess(t *testing.T) {
	srv := testenv.Redis(t)
	s, err := redisstore.New(srv.Client, redisstore.WithPrefix(srv.Prefix))
	require.NoError(t, err)
	storetest.RunCrossProcess(t, s, 3, 10, envURL+"="+srv.URL, envPrefix+"="+srv.Prefix)
}

func TestHelperProcess(t *testing.T) {
	storetest.HelperProcess(t, func(t *testing.T) flags.Store {
		opt, err := redis.ParseURL(os.Getenv(envURL))
		require.NoError(t, err)
		rdb := redis.NewClient(opt)
		t.Cleanup(func() { _ = rdb.Close() })
		s, err := redisstore.New(rdb, redisstore.WithPrefix(os.Getenv(envPrefix)))
		require.NoError(t, err)
		return s
	})
}

// TestOptions: a prefix with a brace would move the keys' hash tag (an
// empty "{}" makes Redis Cluster hash each whole key, so the toggle script
// would span slots): New refuses it. A nil option is ignored.
func TestOptions(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never dialled
	defer rdb.Close()
	for _, p := range []string{"app{}", "{app}:", "a}"} {
		_, err := redisstore.New(rdb, redisstore.WithPrefix(p))
		assert.ErrorContains(t, err, "brace", p)
	}
	s, err := redisstore.New(rdb, nil, redisstore.WithPrefix("app:"))
	require.NoError(t, err)
	assert.Equal(t, "app:flags:changed", s.Channel())
}
