package redisbus_test

import (
	"context"
	"fmt"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/systembuilderhub/hardening/streamauth"
	"github.com/systembuilderhub/hardening/streamauth/redisbus"
)

// Two replicas sharing one Redis: a revocation on either drops the
// matching streams on both.
func Example() {
	mr, err := miniredis.Run() // stands in for a real Redis
	if err != nil {
		panic(err)
	}
	defer mr.Close()
	ctx := context.Background()
	var clients []*redis.Client
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	replica := func() (*streamauth.Registry, *redisbus.Bus) {
		rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
		clients = append(clients, rdb)
		bus, _ := redisbus.New(rdb, redisbus.WithPrefix("myapp:"))
		reg, _ := streamauth.NewRegistry(streamauth.WithBroadcaster(bus))
		if err := bus.Start(ctx, reg); err != nil {
			panic(err)
		}
		return reg, bus
	}
	regA, busA := replica()
	_, busB := replica()
	defer busA.Close(ctx)
	defer busB.Close(ctx)

	n, err := regA.Revoke(ctx, streamauth.Selector{Subject: "alice"})
	fmt.Println(n, err, busA.Channel())
	// Output: 0 <nil> myapp:streamauth:revocations
}
