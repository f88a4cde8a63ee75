package testenv

import (
	"context"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

// RedisCounter counts the round trips a go-redis client makes: one per
// command sent alone, one per pipeline (or transaction) however many
// commands it holds. Install it with CountRedis. It is safe for concurrent
// use.
type RedisCounter struct {
	mu   sync.Mutex
	n    int
	cmds []string
}

// CountRedis adds a counting hook to c and returns its counter.
func CountRedis(c redis.UniversalClient) *RedisCounter {
	rc := &RedisCounter{}
	c.AddHook(rc)
	return rc
}

// Reset zeroes the count.
func (c *RedisCounter) Reset() {
	c.mu.Lock()
	c.n, c.cmds = 0, nil
	c.mu.Unlock()
}

// RoundTrips returns the round trips since the last Reset.
func (c *RedisCounter) RoundTrips() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// Commands lists the commands since the last Reset ("evalsha", "get",
// pipelines as "[a b]"), for failure messages.
func (c *RedisCounter) Commands() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Join(c.cmds, " ")
}

func (c *RedisCounter) add(name string) {
	c.mu.Lock()
	c.n++
	c.cmds = append(c.cmds, name)
	c.mu.Unlock()
}

// DialHook implements redis.Hook; dials are not round trips of a command.
func (c *RedisCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

// ProcessHook implements redis.Hook.
func (c *RedisCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.add(cmd.Name())
		return next(ctx, cmd)
	}
}

// ProcessPipelineHook implements redis.Hook.
func (c *RedisCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		names := make([]string, len(cmds))
		for i, cmd := range cmds {
			names[i] = cmd.Name()
		}
		c.add("[" + strings.Join(names, " ") + "]")
		return next(ctx, cmds)
	}
}

var _ redis.Hook = (*RedisCounter)(nil)
