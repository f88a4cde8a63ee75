package redisstore_test

import (
	"context"
	"fmt"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/systembuilderhub/hardening/tenancy"
	"github.com/systembuilderhub/hardening/tenancy/redisstore"
)

// Replicas sharing one Redis share each tenant's quotas.
func ExampleNew() {
	mr, err := miniredis.Run() // stands in for a real Redis here
	if err != nil {
		panic(err)
	}
	defer mr.Close()
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()

	store, err := redisstore.New(rdb, redisstore.WithPrefix("myapp:tenancy:"))
	if err != nil {
		panic(err)
	}
	now := time.Date(2026, 3, 15, 12, 0, 0, 0, time.UTC)
	q, err := tenancy.NewQuotas(store,
		tenancy.Concurrency("exports", 2, 2*time.Minute),      // 2 at once, leases of 2 minutes
		tenancy.Budget("credits", 1_000_000, tenancy.Monthly), // per UTC calendar month
		tenancy.WithClock(func() time.Time { return now }))
	if err != nil {
		panic(err)
	}
	ctx := tenancy.WithTenant(context.Background(), "acme") // the tenant middleware does this

	_, _ = q.Acquire(ctx, "exports", "export-1")
	_, _ = q.Acquire(ctx, "exports", "export-2")
	_, err = q.Acquire(ctx, "exports", "export-3")
	fmt.Println(err)

	r, _ := q.Reserve(ctx, "credits", 600_000) // the work's maximum cost
	_, _ = q.Settle(ctx, r, 450_000)           // what it really cost
	_, err = q.Reserve(ctx, "credits", 600_000)
	fmt.Println(err)
	// Output:
	// tenancy: concurrency "exports" at its limit (2 of 2 held)
	// tenancy: budget "credits" cannot cover 600000 (450000 spent + 0 reserved of 1000000)
}
