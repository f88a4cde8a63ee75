package testenv

import (
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// EnvRedisClusterAddrs names the variable listing a Redis Cluster's seed
// nodes (comma-separated host:port), as .ci/run exports it.
const EnvRedisClusterAddrs = "REDIS_CLUSTER_ADDRS"

// EnvRequireRedisCluster names the variable that turns a missing cluster
// from a skip into a failure. .ci/run sets it for the run that has a cluster,
// so CI cannot pass with the cluster variants silently skipped; the README's
// plain "go test ./..." leaves it unset and skips them with a message.
const EnvRequireRedisCluster = "HARDENING_REQUIRE_REDIS_CLUSTER"

// RedisClusterServer is one test's view of a Redis Cluster.
type RedisClusterServer struct {
	// Client is a cluster client; it is closed at cleanup.
	Client *redis.ClusterClient
	// Prefix is unique to this test; keys under it are deleted at cleanup.
	Prefix string
}

// RedisCluster returns a client to the Redis Cluster named by
// REDIS_CLUSTER_ADDRS. Without it the test is skipped with a message saying
// how to run it, unless HARDENING_REQUIRE_REDIS_CLUSTER is set (as .ci/run
// does for its cluster run), where a missing cluster fails the test.
func RedisCluster(t testing.TB) *RedisClusterServer {
	t.Helper()
	raw := strings.TrimSpace(os.Getenv(EnvRedisClusterAddrs))
	if raw == "" {
		if os.Getenv(EnvRequireRedisCluster) != "" {
			t.Fatalf("testenv: %s is unset but %s is set; .ci/run starts a 3-node cluster and sets both", EnvRedisClusterAddrs, EnvRequireRedisCluster)
		}
		t.Skipf("testenv: Redis Cluster variant skipped: set %s=host:port,... (bash .ci/run does) to run it", EnvRedisClusterAddrs)
	}
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: strings.Split(raw, ",")})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("testenv: redis cluster at %s does not answer: %v", raw, err)
	}
	s := &RedisClusterServer{Client: c, Prefix: "hardening-test:" + sanitize(t.Name()) + ":" + randHex(4) + ":"}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var mu sync.Mutex
		var keys []string
		_ = c.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
			iter := node.Scan(ctx, 0, s.Prefix+"*", 500).Iterator()
			for iter.Next(ctx) {
				mu.Lock()
				keys = append(keys, iter.Val())
				mu.Unlock()
			}
			return iter.Err()
		})
		for _, k := range keys {
			_ = c.Del(ctx, k).Err()
		}
		_ = c.Close()
	})
	return s
}
