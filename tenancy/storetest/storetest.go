// Package storetest is the conformance suite of the tenancy stores, one
// suite per kind of quota. Every implementation (memory, SQLite, Redis,
// Postgres, and any new backend) runs them from its tests:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) tenancy.Store { return newStore(t) })
//	}
//
// Run runs RunRate, RunConcurrency, RunBudget and RunLimits, and checks
// that limits above tenancy.MaxLimit never reach the store while MaxLimit
// itself comes back exact. A backend that keeps only some kinds runs the
// suites of those kinds (each also needs the tenancy.LimitStore for
// per-tenant overrides).
//
// newStore must return an empty store, independent of the stores returned
// for other calls. Time comes from the requests (Now); a store whose rate
// clock is its server's (Redis TIME) must be built so that it uses the
// request's Now for the suite. The suites include the concurrency cases:
// 200 goroutines on a concurrency limit of 5 and 1,000 reservations
// against a budget that fits 100; CrossProcess runs them across processes.
package storetest

import (
	"testing"
	"time"

	"github.com/systembuilderhub/hardening/tenancy"
)

// T0 is the suites' start time (mid-month, UTC).
var T0 = time.Date(2026, 3, 15, 12, 0, 0, 0, time.UTC)

// RateBackend is what RunRate tests: the rate store, and the limit store
// for per-tenant overrides.
type RateBackend interface {
	tenancy.RateStore
	tenancy.LimitStore
}

// ConcurrencyBackend is what RunConcurrency tests.
type ConcurrencyBackend interface {
	tenancy.ConcurrencyStore
	tenancy.LimitStore
}

// BudgetBackend is what RunBudget tests.
type BudgetBackend interface {
	tenancy.BudgetStore
	tenancy.LimitStore
}

// Run runs every suite against stores from newStore.
func Run(t *testing.T, newStore func(t *testing.T) tenancy.Store) {
	t.Run("Rate", func(t *testing.T) { RunRate(t, func(t *testing.T) RateBackend { return newStore(t) }) })
	t.Run("Concurrency", func(t *testing.T) {
		RunConcurrency(t, func(t *testing.T) ConcurrencyBackend { return newStore(t) })
	})
	t.Run("Budget", func(t *testing.T) { RunBudget(t, func(t *testing.T) BudgetBackend { return newStore(t) }) })
	t.Run("Limits", func(t *testing.T) { RunLimits(t, func(t *testing.T) tenancy.LimitStore { return newStore(t) }) })
	t.Run("MaxLimit", func(t *testing.T) { testMaxLimit(t, newStore(t)) })
}

// override sets tenant's override of quota through s, as Quotas does.
func override(t *testing.T, s tenancy.LimitStore, tenant tenancy.ID, quota string, v int64) {
	t.Helper()
	_, err := s.SetLimits(t.Context(), tenancy.SetLimitsRequest{Tenant: tenant, Defaults: tenancy.Limits{quota: 0},
		Set: tenancy.Limits{quota: v}, ChangedBy: "test", Now: T0})
	if err != nil {
		t.Fatal(err)
	}
}
