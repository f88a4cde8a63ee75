package storetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening/tenancy"
)

// RunBudget is the conformance suite of tenancy.BudgetStore.
func RunBudget(t *testing.T, newStore func(t *testing.T) BudgetBackend) {
	t.Run("Reserve", func(t *testing.T) { testBudget(t, newStore(t)) })
	t.Run("Limits", func(t *testing.T) { testBudgetLimits(t, newStore(t)) })
	t.Run("ExpiryAndPeriod", func(t *testing.T) { testBudgetExpiry(t, newStore(t)) })
	t.Run("Concurrent", func(t *testing.T) { testBudgetConcurrent(t, newStore(t)) })
}

// ReserveReq is a reservation request of tests: a monthly budget, a
// ten-minute TTL.
func ReserveReq(quota string, tenant tenancy.ID, id string, amount int64, now time.Time, limit int64) tenancy.ReserveRequest {
	return tenancy.ReserveRequest{Tenant: tenant, Quota: quota, ReservationID: id, Amount: amount, Period: tenancy.Monthly.Key(now),
		ResetsAt: tenancy.Monthly.End(now), Now: now, TTL: 10 * time.Minute, DefaultLimit: limit}
}

func reserve(t *testing.T, s tenancy.BudgetStore, req tenancy.ReserveRequest) tenancy.BudgetResult {
	t.Helper()
	r, err := s.Reserve(t.Context(), req)
	require.NoError(t, err)
	return r
}

func settle(t *testing.T, s tenancy.BudgetStore, quota string, tenant tenancy.ID, id string, actual int64, now time.Time) tenancy.SettleResult {
	t.Helper()
	r, err := s.Settle(t.Context(), tenancy.SettleRequest{Tenant: tenant, Quota: quota, ReservationID: id, Actual: actual, Now: now, Period: tenancy.Monthly.Key(now)})
	require.NoError(t, err)
	return r
}

func budgetUsage(t *testing.T, s tenancy.BudgetStore, quota string, tenant tenancy.ID, now time.Time) tenancy.BudgetUsage {
	t.Helper()
	u, err := s.BudgetUsage(t.Context(), tenant, quota, tenancy.Monthly.Key(now), now)
	require.NoError(t, err)
	return u
}

func testBudget(t *testing.T, s BudgetBackend) {
	ctx := t.Context()
	const limit = 1_000
	r := reserve(t, s, ReserveReq("credits", "a", "r1", 600, T0, limit))
	require.True(t, r.Reserved)
	assert.Equal(t, int64(limit), r.Limit)
	assert.Equal(t, int64(0), r.Spent)
	assert.Equal(t, int64(600), r.Outstanding)
	assert.Equal(t, time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC), r.ResetsAt)
	assert.Equal(t, T0.Add(10*time.Minute).UnixMilli(), r.ExpiresAt.UnixMilli())

	r = reserve(t, s, ReserveReq("credits", "a", "r2", 401, T0, limit))
	assert.False(t, r.Reserved, "600 + 401 > 1000")
	assert.Equal(t, int64(600), r.Outstanding)
	assert.Equal(t, int64(401), r.Requested)
	require.True(t, reserve(t, s, ReserveReq("credits", "a", "r2", 400, T0, limit)).Reserved, "600 + 400 = 1000 fits exactly")

	sr := settle(t, s, "credits", "a", "r1", 250, T0)
	assert.True(t, sr.Found)
	assert.Equal(t, int64(250), sr.Spent)
	assert.False(t, settle(t, s, "credits", "a", "r1", 250, T0).Found, "settling twice records nothing")

	r = reserve(t, s, ReserveReq("credits", "a", "r3", 350, T0, limit))
	assert.True(t, r.Reserved, "the rest of r1 came back: 250 spent + 400 + 350")
	assert.Equal(t, int64(250), r.Spent)
	assert.Equal(t, int64(750), r.Outstanding)

	ok, err := s.Cancel(ctx, "a", "credits", "r2")
	require.NoError(t, err)
	assert.True(t, ok)
	ok, err = s.Cancel(ctx, "a", "credits", "r2")
	require.NoError(t, err)
	assert.False(t, ok)
	assert.False(t, settle(t, s, "credits", "a", "r2", 1, T0).Found, "a cancelled reservation cannot be settled")
	assert.Equal(t, tenancy.BudgetUsage{Spent: 250, Reserved: 350}, budgetUsage(t, s, "credits", "a", T0))

	assert.True(t, reserve(t, s, ReserveReq("credits", "b", "r1", 1000, T0, limit)).Reserved, "tenants are independent, even with the same reservation id")
	assert.True(t, reserve(t, s, ReserveReq("tokens", "a", "r3", 1000, T0, limit)).Reserved, "quotas are independent")
	assert.False(t, settle(t, s, "tokens", "a", "r1", 1, T0).Found, "a reservation of one quota is not another's")
	assert.True(t, settle(t, s, "credits", "a", "r3", 350, T0).Found)
	assert.Equal(t, tenancy.BudgetUsage{Spent: 600}, budgetUsage(t, s, "credits", "a", T0))
	assert.Equal(t, tenancy.BudgetUsage{Reserved: 1000}, budgetUsage(t, s, "tokens", "a", T0))
}

func testBudgetLimits(t *testing.T, s BudgetBackend) {
	override(t, s, "a", "credits", 5_000)
	r := reserve(t, s, ReserveReq("credits", "a", "r", 4_400, T0, 1_000))
	assert.True(t, r.Reserved, "an override beats the default")
	assert.Equal(t, int64(5_000), r.Limit)

	assert.False(t, reserve(t, s, ReserveReq("credits", "z", "r", 1, T0, 0)).Reserved, "a budget of 0 admits nothing")
	r = reserve(t, s, ReserveReq("credits", "u", "r", tenancy.MaxLimit, T0, tenancy.Unlimited))
	assert.True(t, r.Reserved, "Unlimited admits everything")
	assert.Equal(t, tenancy.Unlimited, r.Limit)
	assert.True(t, reserve(t, s, ReserveReq("credits", "u", "r2", tenancy.MaxLimit, T0, tenancy.Unlimited)).Reserved)
	override(t, s, "v", "credits", tenancy.Unlimited)
	assert.True(t, reserve(t, s, ReserveReq("credits", "v", "r", 10, T0, 1)).Reserved, "an Unlimited override")
	override(t, s, "v", "credits", 0)
	assert.False(t, reserve(t, s, ReserveReq("credits", "v", "r2", 1, T0, 100)).Reserved, "an override of 0")
}

func testBudgetExpiry(t *testing.T, s BudgetBackend) {
	const limit = 1_000
	require.True(t, reserve(t, s, ReserveReq("credits", "a", "crashed", 1_000, T0, limit)).Reserved)
	assert.False(t, reserve(t, s, ReserveReq("credits", "a", "x", 1, T0.Add(10*time.Minute-time.Millisecond), limit)).Reserved)
	assert.Equal(t, tenancy.BudgetUsage{}, budgetUsage(t, s, "credits", "a", T0.Add(10*time.Minute)), "an expired reservation holds nothing")
	r := reserve(t, s, ReserveReq("credits", "a", "x", 1_000, T0.Add(10*time.Minute), limit))
	assert.True(t, r.Reserved, "a crashed process's reservation expires and returns")
	assert.Equal(t, int64(1_000), r.Outstanding)
	assert.False(t, settle(t, s, "credits", "a", "crashed", 500, T0.Add(11*time.Minute)).Found, "an expired reservation cannot be settled")
	assert.True(t, settle(t, s, "credits", "a", "x", 1_000, T0.Add(11*time.Minute)).Found)

	assert.False(t, reserve(t, s, ReserveReq("credits", "a", "y", 1, T0.Add(12*time.Minute), limit)).Reserved, "budget spent")
	// The period rolls over at the start of the next one (UTC).
	endOfMonth := time.Date(2026, 3, 31, 23, 59, 59, 0, time.UTC)
	assert.False(t, reserve(t, s, ReserveReq("credits", "a", "y", 1, endOfMonth, limit)).Reserved)
	r = reserve(t, s, ReserveReq("credits", "a", "y", 1_000, endOfMonth.Add(time.Second), limit))
	assert.True(t, r.Reserved, "a new month starts empty")
	assert.Equal(t, int64(0), r.Spent)
	assert.Equal(t, time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC), r.ResetsAt)

	// A reservation settles into its own period, even after the rollover.
	day := ReserveReq("daily", "a", "d", 10, endOfMonth, limit)
	day.Period, day.ResetsAt = tenancy.Daily.Key(endOfMonth), tenancy.Daily.End(endOfMonth)
	require.True(t, reserve(t, s, day).Reserved)
	next := endOfMonth.Add(time.Minute)
	sr, err := s.Settle(t.Context(), tenancy.SettleRequest{Tenant: "a", Quota: "daily", ReservationID: "d", Actual: 7, Now: next, Period: tenancy.Daily.Key(next)})
	require.NoError(t, err)
	assert.Equal(t, tenancy.SettleResult{Found: true, Spent: 7}, sr)
	u, err := s.BudgetUsage(t.Context(), "a", "daily", "2026-03-31", next)
	require.NoError(t, err)
	assert.Equal(t, int64(7), u.Spent, "spent in the reservation's day")
	u, err = s.BudgetUsage(t.Context(), "a", "daily", "2026-04-01", next)
	require.NoError(t, err)
	assert.Equal(t, tenancy.BudgetUsage{}, u)
}

// testBudgetConcurrent: 1,000 reservations against a budget that fits
// 100: exactly 100 succeed, and settling them spends exactly the budget.
func testBudgetConcurrent(t *testing.T, s BudgetBackend) {
	const amount = 1_000_000
	const limit = 100 * amount
	var wg sync.WaitGroup
	var mu sync.Mutex
	var granted []string
	errs := make(chan error, 1000)
	for i := range 1000 {
		wg.Go(func() {
			id := fmt.Sprint("r", i)
			r, err := s.Reserve(t.Context(), ReserveReq("credits", "busy", id, amount, T0, limit))
			if err != nil {
				errs <- err
				return
			}
			if r.Reserved {
				if r.Spent+r.Outstanding > limit {
					errs <- fmt.Errorf("reservation %s saw spent %d + reserved %d over the budget", id, r.Spent, r.Outstanding)
				}
				mu.Lock()
				granted = append(granted, id)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Len(t, granted, 100, "exactly the budget's worth of reservations succeed")
	for _, id := range granted {
		wg.Go(func() {
			_, _ = s.Settle(t.Context(), tenancy.SettleRequest{Tenant: "busy", Quota: "credits", ReservationID: id, Actual: amount, Now: T0, Period: tenancy.Monthly.Key(T0)})
		})
	}
	wg.Wait()
	assert.Equal(t, tenancy.BudgetUsage{Spent: limit}, budgetUsage(t, s, "credits", "busy", T0), "spent equals the budget, not one unit over")
	assert.False(t, reserve(t, s, ReserveReq("credits", "busy", "late", 1, T0, limit)).Reserved)
}
