package redisstore_test

import (
	"context"
	"fmt"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/systembuilderhub/hardening/previewsec"
	"github.com/systembuilderhub/hardening/previewsec/redisstore"
)

// Replicas sharing one Redis share the key ring and the revocation list.
func ExampleNew() {
	mr := miniredis.NewMiniRedis() // your Redis in production
	if err := mr.Start(); err != nil {
		fmt.Println(err)
		return
	}
	defer mr.Close()
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()

	ctx := context.Background()
	store, _ := redisstore.New(rdb, redisstore.WithKeyPrefix("myapp:"))
	at := func() time.Time { return time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC) }
	ring, _ := previewsec.NewKeyRing(store, previewsec.WithClock(at))
	if err := ring.Refresh(ctx); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(ring.KeyIDs())
	fmt.Println(rdb.Exists(ctx, "myapp:{previewsec:keys}:keys").Val())
	// Output:
	// [20300601T000000Z]
	// 1
}
