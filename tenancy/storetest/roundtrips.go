package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/systembuilderhub/hardening/tenancy"
)

// RoundTrips makes each kind of quota decision through Quotas on s (a
// rate Allow, a concurrency Acquire, a budget Reserve) and reports the
// backend round trips of each, as counted by count after reset (the store's
// test wraps its client or driver to count). Every decision is made once
// before it is counted, so one-time costs (loading a Redis script) are
// left out. The kit's stores decide in one round trip; a store test
// asserts it, so that a change adding a round trip fails.
func RoundTrips(t testing.TB, s tenancy.Store, reset func(), count func() int) map[string]int {
	t.Helper()
	q, err := tenancy.NewQuotas(s, tenancy.Rate("orders", 1_000_000, time.Minute),
		tenancy.Concurrency("exports", 1_000_000, time.Minute), tenancy.Budget("credits", 1<<40, tenancy.Monthly))
	if err != nil {
		t.Fatal(err)
	}
	ctx := tenancy.WithTenant(context.Background(), "acme")
	decisions := map[string]func() error{
		"rate": func() error { _, err := q.Allow(ctx, "orders"); return err },
		"concurrency": func() error {
			_, err := q.Acquire(ctx, "exports", "holder")
			return err
		},
		"budget": func() error { _, err := q.Reserve(ctx, "credits", 1); return err },
	}
	out := make(map[string]int, len(decisions))
	for name, decide := range decisions {
		if err := decide(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		reset()
		if err := decide(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out[name] = count()
	}
	return out
}
