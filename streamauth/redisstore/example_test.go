package redisstore_test

import (
	"context"
	"fmt"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/systembuilderhub/hardening/streamauth"
	"github.com/systembuilderhub/hardening/streamauth/redisbus"
	"github.com/systembuilderhub/hardening/streamauth/redisstore"
)

// Across replicas: the store keeps revocations over restarts, the bus drops
// the other replicas' streams at once.
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
	bus, _ := redisbus.New(rdb, redisbus.WithPrefix("myapp:"))
	reg, _ := streamauth.NewRegistry(streamauth.WithRevocationStore(store), streamauth.WithBroadcaster(bus))
	if err := reg.LoadRevocations(ctx); err != nil {
		panic(err)
	}
	_, _ = reg.Revoke(ctx, streamauth.Selector{Tenant: "acme"})
	_ = reg.Close(ctx)

	keys, _ := rdb.Keys(ctx, "myapp:*").Result()
	fmt.Println(len(keys), rdb.Exists(ctx, `myapp:{streamauth}:revocation:["","acme"]`).Val())
	// Output: 2 1
}
