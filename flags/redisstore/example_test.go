package redisstore_test

import (
	"context"
	"fmt"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/systembuilderhub/hardening/flags"
	"github.com/systembuilderhub/hardening/flags/redisstore"
)

func Example() {
	ctx := context.Background()
	mr, err := miniredis.Run() // stands in for a real Redis here
	if err != nil {
		panic(err)
	}
	defer mr.Close()
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()

	store, _ := redisstore.New(rdb, redisstore.WithPrefix("myapp:"))
	c, _ := flags.New(store, flags.WithFlags(flags.Flag{Name: "llm.streaming"}))
	if err := c.Start(ctx); err != nil { // loads the cache, subscribes to myapp:flags:changed
		panic(err)
	}
	defer c.Close(ctx)

	_, _ = c.Toggle(ctx, "llm.streaming", true, flags.Change{By: "alice", TenantID: "acme"})
	fmt.Println(c.Evaluate("llm.streaming", "acme", false), c.Evaluate("llm.streaming", "globex", false))
	fmt.Println(store.Channel())
	// Output:
	// {true override} {false default}
	// myapp:flags:changed
}
