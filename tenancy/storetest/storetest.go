// Package storetest is the conformance suite of tenancy.Store. Every
// implementation (memory, SQLite, Redis, and any new backend) runs it from
// its tests:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) tenancy.Store { return newStore(t) })
//	}
//
// newStore must return an empty store, independent of the stores returned
// for other calls. Time comes from the requests (Now); a store whose rate
// clock is its server's (Redis TIME) must be built so that it uses the
// request's Now for the suite. The suite includes the concurrency cases:
// 200 goroutines on a semaphore of 5 and 1,000 reservations against a
// budget that fits 100.
package storetest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening/tenancy"
)

// T0 is the suite's start time (mid-month, UTC).
var T0 = time.Date(2026, 3, 15, 12, 0, 0, 0, time.UTC)

const lease = time.Minute

// Run runs the whole suite against stores from newStore.
func Run(t *testing.T, newStore func(t *testing.T) tenancy.Store) {
	t.Run("Slots", func(t *testing.T) { testSlots(t, newStore(t)) })
	t.Run("SlotLeases", func(t *testing.T) { testSlotLeases(t, newStore(t)) })
	t.Run("SlotsConcurrent", func(t *testing.T) { testSlotsConcurrent(t, newStore(t)) })
	t.Run("Rate", func(t *testing.T) { testRate(t, newStore(t)) })
	t.Run("RateSameAsMemory", func(t *testing.T) { testRateSameAsMemory(t, newStore(t)) })
	t.Run("Budget", func(t *testing.T) { testBudget(t, newStore(t)) })
	t.Run("BudgetExpiryAndMonth", func(t *testing.T) { testBudgetExpiry(t, newStore(t)) })
	t.Run("BudgetConcurrent", func(t *testing.T) { testBudgetConcurrent(t, newStore(t)) })
	t.Run("LimitsAndAudit", func(t *testing.T) { testLimitsAudit(t, newStore(t)) })
	t.Run("AuditPaging", func(t *testing.T) { testAuditPaging(t, newStore(t)) })
	t.Run("Usage", func(t *testing.T) { testUsage(t, newStore(t)) })
	t.Run("MaxLimit", func(t *testing.T) { testMaxLimit(t, newStore(t)) })
}

func acquire(t *testing.T, s tenancy.Store, tenant tenancy.ID, id string, now time.Time, limit int64) tenancy.SlotResult {
	t.Helper()
	res, err := s.AcquireSlot(context.Background(), tenancy.SlotRequest{Tenant: tenant, PreviewID: id, Now: now, Lease: lease, DefaultLimit: limit})
	require.NoError(t, err)
	return res
}

func testSlots(t *testing.T, s tenancy.Store) {
	ctx := context.Background()
	for i := range 3 {
		r := acquire(t, s, "a", fmt.Sprint("p", i), T0, 3)
		assert.True(t, r.Held)
		assert.Equal(t, int64(i+1), r.Current)
		assert.Equal(t, int64(3), r.Limit)
		assert.Equal(t, T0.Add(lease).UnixMilli(), r.ExpiresAt.UnixMilli())
	}
	r := acquire(t, s, "a", "p3", T0, 3)
	assert.False(t, r.Held, "over the limit")
	assert.Equal(t, int64(3), r.Current)
	assert.Equal(t, int64(3), r.Limit)

	r = acquire(t, s, "a", "p1", T0, 3)
	assert.True(t, r.Held, "same preview id again counts once")
	assert.Equal(t, int64(3), r.Current)

	assert.True(t, acquire(t, s, "b", "p3", T0, 3).Held, "tenants are independent")

	ok, err := s.ReleaseSlot(ctx, "a", "p1")
	require.NoError(t, err)
	assert.True(t, ok)
	ok, err = s.ReleaseSlot(ctx, "a", "p1")
	require.NoError(t, err)
	assert.False(t, ok, "release is idempotent")
	ok, err = s.ReleaseSlot(ctx, "a", "never")
	require.NoError(t, err)
	assert.False(t, ok)

	r = acquire(t, s, "a", "p3", T0, 3)
	assert.True(t, r.Held, "a released slot is free")
	assert.Equal(t, int64(3), r.Current)

	// An override beats the default.
	four := int64(4)
	_, err = s.UpdateLimits(ctx, tenancy.UpdateRequest{Tenant: "a", Defaults: tenancy.DefaultLimits(), Patch: tenancy.LimitsPatch{ActivePreviews: &four}, ChangedBy: "test", Now: T0})
	require.NoError(t, err)
	r = acquire(t, s, "a", "p4", T0, 3)
	assert.True(t, r.Held)
	assert.Equal(t, int64(4), r.Limit)
	assert.False(t, acquire(t, s, "a", "p5", T0, 3).Held)

	zero := int64(0)
	_, err = s.UpdateLimits(ctx, tenancy.UpdateRequest{Tenant: "c", Defaults: tenancy.DefaultLimits(), Patch: tenancy.LimitsPatch{ActivePreviews: &zero}, ChangedBy: "test", Now: T0})
	require.NoError(t, err)
	assert.False(t, acquire(t, s, "c", "p", T0, 3).Held, "limit 0 admits nothing")
}

func testSlotLeases(t *testing.T, s tenancy.Store) {
	ctx := context.Background()
	require.True(t, acquire(t, s, "a", "crashed", T0, 1).Held)
	assert.False(t, acquire(t, s, "a", "other", T0.Add(lease-time.Millisecond), 1).Held, "lease still running")
	r := acquire(t, s, "a", "other", T0.Add(lease), 1)
	assert.True(t, r.Held, "a crashed owner's slot frees itself when its lease ends")
	assert.Equal(t, int64(1), r.Current)

	// Renewal keeps the slot past the first lease.
	t1 := T0.Add(lease)
	rn, err := s.RenewSlot(ctx, tenancy.SlotRequest{Tenant: "a", PreviewID: "other", Now: t1.Add(lease / 2), Lease: lease})
	require.NoError(t, err)
	assert.True(t, rn.Held)
	assert.Equal(t, t1.Add(lease/2+lease).UnixMilli(), rn.ExpiresAt.UnixMilli())
	assert.False(t, acquire(t, s, "a", "third", t1.Add(lease+time.Second), 1).Held, "renewed slot is still held")

	// Renewing a lapsed slot fails.
	rn, err = s.RenewSlot(ctx, tenancy.SlotRequest{Tenant: "a", PreviewID: "other", Now: t1.Add(3 * lease), Lease: lease})
	require.NoError(t, err)
	assert.False(t, rn.Held)
	rn, err = s.RenewSlot(ctx, tenancy.SlotRequest{Tenant: "a", PreviewID: "never", Now: T0, Lease: lease})
	require.NoError(t, err)
	assert.False(t, rn.Held)
}

func testSlotsConcurrent(t *testing.T, s tenancy.Store) {
	var held atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := s.AcquireSlot(context.Background(), tenancy.SlotRequest{Tenant: "busy", PreviewID: fmt.Sprint("p", i), Now: T0, Lease: lease, DefaultLimit: 5})
			if err != nil {
				errs <- err
				return
			}
			if r.Held {
				held.Add(1)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	assert.Equal(t, int64(5), held.Load(), "exactly the limit acquires")
	u, err := s.Usage(context.Background(), "busy", T0, tenancy.DefaultLimits())
	require.NoError(t, err)
	assert.Equal(t, int64(5), u.ActivePreviews)
}

func take(t *testing.T, s tenancy.Store, tenant tenancy.ID, now time.Time, limit int64) tenancy.RateResult {
	t.Helper()
	r, err := s.TakeRate(context.Background(), tenancy.RateRequest{Tenant: tenant, Resource: tenancy.ResourceSnapshots, Now: now, DefaultLimit: limit})
	require.NoError(t, err)
	return r
}

func testRate(t *testing.T, s tenancy.Store) {
	for i := range 10 {
		r := take(t, s, "a", T0, 10)
		require.True(t, r.Allowed, "burst %d", i)
		assert.Equal(t, int64(10), r.Limit)
		assert.Equal(t, int64(9-i), r.Remaining)
		assert.Equal(t, time.Duration(i+1)*6*time.Second, r.ResetAfter)
	}
	r := take(t, s, "a", T0, 10)
	assert.False(t, r.Allowed, "the 11th in the window")
	assert.Equal(t, int64(0), r.Remaining)
	assert.Equal(t, 6*time.Second, r.RetryAfter)
	assert.Equal(t, 60*time.Second, r.ResetAfter)

	r = take(t, s, "a", T0.Add(6*time.Second-time.Millisecond), 10)
	assert.False(t, r.Allowed)
	assert.Equal(t, time.Millisecond, r.RetryAfter)
	r = take(t, s, "a", T0.Add(6*time.Second), 10)
	assert.True(t, r.Allowed, "one more every 60/N seconds")
	assert.Equal(t, int64(0), r.Remaining)
	assert.False(t, take(t, s, "a", T0.Add(6*time.Second), 10).Allowed)

	// Exactly N admitted per window at a steady pace.
	admitted := 0
	for ms := int64(0); ms < 60_000; ms += 500 {
		if take(t, s, "pace", T0.Add(time.Duration(ms)*time.Millisecond), 10).Allowed {
			admitted++
		}
	}
	assert.Equal(t, 10+9, admitted, "burst of 10, then one per 6s over the remaining 54s")

	assert.True(t, take(t, s, "b", T0, 10).Allowed, "tenants are independent")
	assert.False(t, take(t, s, "zero", T0, 0).Allowed, "limit 0 admits nothing")
	r = take(t, s, "huge", T0, 100_000_000)
	assert.True(t, r.Allowed, "a limit above one per microsecond still works")
	assert.Equal(t, int64(100_000_000), r.Limit)

	// An override beats the default.
	two := int64(2)
	_, err := s.UpdateLimits(context.Background(), tenancy.UpdateRequest{Tenant: "c", Defaults: tenancy.DefaultLimits(), Patch: tenancy.LimitsPatch{SnapshotsPerMinute: &two}, ChangedBy: "test", Now: T0})
	require.NoError(t, err)
	assert.True(t, take(t, s, "c", T0, 10).Allowed)
	r = take(t, s, "c", T0, 10)
	assert.True(t, r.Allowed)
	assert.Equal(t, int64(2), r.Limit)
	r = take(t, s, "c", T0, 10)
	assert.False(t, r.Allowed)
	assert.Equal(t, 30*time.Second, r.RetryAfter)
}

func testRateSameAsMemory(t *testing.T, s tenancy.Store) {
	mem := tenancy.NewMemoryStore()
	rng := rand.New(rand.NewPCG(1, 2))
	now := T0
	for i := range 300 {
		now = now.Add(time.Duration(rng.IntN(4000)) * time.Millisecond)
		limit := int64(7)
		want := take(t, mem, "a", now, limit)
		got := take(t, s, "a", now, limit)
		require.Equal(t, want, got, "decision %d at %v", i, now)
	}
}

func reserve(t *testing.T, s tenancy.Store, tenant tenancy.ID, id string, amount tenancy.Micros, now time.Time, budget tenancy.Micros) tenancy.BudgetResult {
	t.Helper()
	r, err := s.Reserve(context.Background(), tenancy.ReserveRequest{Tenant: tenant, ReservationID: id, Amount: amount, Now: now, TTL: 10 * time.Minute, DefaultBudget: budget})
	require.NoError(t, err)
	return r
}

func settle(t *testing.T, s tenancy.Store, tenant tenancy.ID, id string, actual tenancy.Micros, now time.Time) tenancy.SettleResult {
	t.Helper()
	r, err := s.Settle(context.Background(), tenancy.SettleRequest{Tenant: tenant, ReservationID: id, Actual: actual, Now: now})
	require.NoError(t, err)
	return r
}

func testBudget(t *testing.T, s tenancy.Store) {
	ctx := context.Background()
	const budget = tenancy.Micros(1_000)
	r := reserve(t, s, "a", "r1", 600, T0, budget)
	require.True(t, r.Reserved)
	assert.Equal(t, budget, r.Budget)
	assert.Equal(t, tenancy.Micros(0), r.Spent)
	assert.Equal(t, tenancy.Micros(600), r.Outstanding)
	assert.Equal(t, time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC), r.ResetsAt)
	assert.Equal(t, T0.Add(10*time.Minute).UnixMilli(), r.ExpiresAt.UnixMilli())

	r = reserve(t, s, "a", "r2", 401, T0, budget)
	assert.False(t, r.Reserved, "600 + 401 > 1000")
	assert.Equal(t, tenancy.Micros(600), r.Outstanding)
	assert.Equal(t, tenancy.Micros(401), r.Requested)
	require.True(t, reserve(t, s, "a", "r2", 400, T0, budget).Reserved, "600 + 400 = 1000 fits exactly")

	sr := settle(t, s, "a", "r1", 250, T0)
	assert.True(t, sr.Found)
	assert.Equal(t, tenancy.Micros(250), sr.Spent)
	assert.False(t, settle(t, s, "a", "r1", 250, T0).Found, "settling twice records nothing")

	r = reserve(t, s, "a", "r3", 350, T0, budget)
	assert.True(t, r.Reserved, "the rest of r1 came back: 250 spent + 400 + 350")
	assert.Equal(t, tenancy.Micros(250), r.Spent)
	assert.Equal(t, tenancy.Micros(750), r.Outstanding)

	ok, err := s.Cancel(ctx, "a", "r2")
	require.NoError(t, err)
	assert.True(t, ok)
	ok, err = s.Cancel(ctx, "a", "r2")
	require.NoError(t, err)
	assert.False(t, ok)
	assert.False(t, settle(t, s, "a", "r2", 1, T0).Found, "a cancelled reservation cannot be settled")

	u, err := s.Usage(ctx, "a", T0, tenancy.Limits{LLMMonthlyBudget: budget})
	require.NoError(t, err)
	assert.Equal(t, tenancy.Micros(250), u.LLMSpent)
	assert.Equal(t, tenancy.Micros(350), u.LLMReserved)

	assert.True(t, reserve(t, s, "b", "r1", 1000, T0, budget).Reserved, "tenants are independent, even with the same reservation id")
	assert.True(t, settle(t, s, "a", "r3", 350, T0).Found)

	// An override beats the default.
	big := tenancy.Micros(5_000)
	_, err = s.UpdateLimits(ctx, tenancy.UpdateRequest{Tenant: "a", Defaults: tenancy.DefaultLimits(), Patch: tenancy.LimitsPatch{LLMMonthlyBudget: &big}, ChangedBy: "test", Now: T0})
	require.NoError(t, err)
	r = reserve(t, s, "a", "r4", 4_400, T0, budget)
	assert.True(t, r.Reserved)
	assert.Equal(t, big, r.Budget)
}

func testBudgetExpiry(t *testing.T, s tenancy.Store) {
	const budget = tenancy.Micros(1_000)
	require.True(t, reserve(t, s, "a", "crashed", 1_000, T0, budget).Reserved)
	assert.False(t, reserve(t, s, "a", "x", 1, T0.Add(10*time.Minute-time.Millisecond), budget).Reserved)
	r := reserve(t, s, "a", "x", 1_000, T0.Add(10*time.Minute), budget)
	assert.True(t, r.Reserved, "a crashed process's reservation expires and returns")
	assert.Equal(t, tenancy.Micros(1_000), r.Outstanding)
	assert.False(t, settle(t, s, "a", "crashed", 500, T0.Add(11*time.Minute)).Found, "an expired reservation cannot be settled")
	assert.True(t, settle(t, s, "a", "x", 1_000, T0.Add(11*time.Minute)).Found)

	assert.False(t, reserve(t, s, "a", "y", 1, T0.Add(12*time.Minute), budget).Reserved, "budget spent")
	// Month rollover resets the budget (calendar month, UTC).
	endOfMonth := time.Date(2026, 3, 31, 23, 59, 59, 0, time.UTC)
	assert.False(t, reserve(t, s, "a", "y", 1, endOfMonth, budget).Reserved)
	r = reserve(t, s, "a", "y", 1_000, endOfMonth.Add(time.Second), budget)
	assert.True(t, r.Reserved, "a new month starts empty")
	assert.Equal(t, tenancy.Micros(0), r.Spent)
	assert.Equal(t, time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC), r.ResetsAt)
}

func testBudgetConcurrent(t *testing.T, s tenancy.Store) {
	const amount = tenancy.Micros(1_000_000)
	const budget = 100 * amount
	var wg sync.WaitGroup
	var mu sync.Mutex
	var granted []string
	errs := make(chan error, 1000)
	for i := range 1000 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprint("r", i)
			r, err := s.Reserve(context.Background(), tenancy.ReserveRequest{Tenant: "busy", ReservationID: id, Amount: amount, Now: T0, TTL: time.Hour, DefaultBudget: budget})
			if err != nil {
				errs <- err
				return
			}
			if r.Reserved {
				if r.Spent+r.Outstanding > budget {
					errs <- fmt.Errorf("reservation %s saw spent %d + reserved %d over the budget", id, r.Spent, r.Outstanding)
				}
				mu.Lock()
				granted = append(granted, id)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Len(t, granted, 100, "exactly the budget's worth of reservations succeed")

	var spent tenancy.Micros
	for _, id := range granted {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = s.Settle(context.Background(), tenancy.SettleRequest{Tenant: "busy", ReservationID: id, Actual: amount, Now: T0})
		}()
	}
	wg.Wait()
	u, err := s.Usage(context.Background(), "busy", T0, tenancy.Limits{LLMMonthlyBudget: budget})
	require.NoError(t, err)
	spent = u.LLMSpent
	assert.Equal(t, budget, spent, "spent equals the budget, not one micro-dollar over")
	assert.Equal(t, tenancy.Micros(0), u.LLMReserved)
	assert.False(t, reserve(t, s, "busy", "late", 1, T0, budget).Reserved)
}

func testLimitsAudit(t *testing.T, s tenancy.Store) {
	ctx := context.Background()
	d := tenancy.DefaultLimits()
	l, err := s.Limits(ctx, "a", d)
	require.NoError(t, err)
	assert.Equal(t, d, l, "no overrides: the defaults")

	ten := int64(10)
	l, err = s.UpdateLimits(ctx, tenancy.UpdateRequest{Tenant: "a", Defaults: d, Patch: tenancy.LimitsPatch{ActivePreviews: &ten}, ChangedBy: "admin-1", Reason: "bigger plan", Now: T0})
	require.NoError(t, err)
	assert.Equal(t, tenancy.Limits{ActivePreviews: 10, SnapshotsPerMinute: d.SnapshotsPerMinute, LLMMonthlyBudget: d.LLMMonthlyBudget}, l)

	twenty := int64(20)
	budget := tenancy.Micros(250_000_000)
	t1 := T0.Add(time.Hour)
	l, err = s.UpdateLimits(ctx, tenancy.UpdateRequest{Tenant: "a", Defaults: d, Patch: tenancy.LimitsPatch{ActivePreviews: &twenty, LLMMonthlyBudget: &budget}, ChangedBy: "admin-2", Reason: "again", Now: t1})
	require.NoError(t, err)
	assert.Equal(t, tenancy.Limits{ActivePreviews: 20, SnapshotsPerMinute: d.SnapshotsPerMinute, LLMMonthlyBudget: budget}, l)
	got, err := s.Limits(ctx, "a", d)
	require.NoError(t, err)
	assert.Equal(t, l, got)
	other, err := s.Limits(ctx, "b", d)
	require.NoError(t, err)
	assert.Equal(t, d, other, "overrides are per tenant")

	// Defaults changed later still apply to fields without override.
	d2 := d
	d2.SnapshotsPerMinute = 99
	got, err = s.Limits(ctx, "a", d2)
	require.NoError(t, err)
	assert.Equal(t, int64(99), got.SnapshotsPerMinute)

	page, err := s.Audit(ctx, tenancy.AuditQuery{Tenant: "a"})
	require.NoError(t, err)
	assert.Empty(t, page.NextCursor)
	want := []tenancy.AuditEntry{
		{Tenant: "a", Field: tenancy.FieldActivePreviews, OldValue: 5, NewValue: 10, ChangedBy: "admin-1", ChangedAt: T0, Reason: "bigger plan"},
		{Tenant: "a", Field: tenancy.FieldActivePreviews, OldValue: 10, NewValue: 20, ChangedBy: "admin-2", ChangedAt: t1, Reason: "again"},
		{Tenant: "a", Field: tenancy.FieldLLMMonthlyBudget, OldValue: int64(d.LLMMonthlyBudget), NewValue: int64(budget), ChangedBy: "admin-2", ChangedAt: t1, Reason: "again"},
	}
	require.Len(t, page.Entries, len(want))
	for i := range want {
		e := page.Entries[i]
		assert.True(t, want[i].ChangedAt.Equal(e.ChangedAt), "changed_at %v", e.ChangedAt)
		e.ChangedAt = want[i].ChangedAt
		assert.Equal(t, want[i], e)
	}

	page, err = s.Audit(ctx, tenancy.AuditQuery{Tenant: "a", Since: t1})
	require.NoError(t, err)
	assert.Len(t, page.Entries, 2, "since filters by changed_at")
	page, err = s.Audit(ctx, tenancy.AuditQuery{Tenant: "b"})
	require.NoError(t, err)
	assert.Empty(t, page.Entries)
	_, err = s.Audit(ctx, tenancy.AuditQuery{Cursor: "%%garbage"})
	assert.ErrorIs(t, err, tenancy.ErrBadCursor)
}

func testAuditPaging(t *testing.T, s tenancy.Store) {
	ctx := context.Background()
	d := tenancy.DefaultLimits()
	want := map[string]bool{}
	for i := range 7 {
		tenant := tenancy.ID([]string{"t1", "t2", "t3"}[i%3])
		v := int64(100 + i)
		_, err := s.UpdateLimits(ctx, tenancy.UpdateRequest{Tenant: tenant, Defaults: d, Patch: tenancy.LimitsPatch{SnapshotsPerMinute: &v}, ChangedBy: "admin", Now: T0.Add(time.Duration(i) * time.Second)})
		require.NoError(t, err)
		want[fmt.Sprint(tenant, v)] = true
	}
	for _, q := range []tenancy.AuditQuery{{Limit: 2}, {Limit: 3}, {Limit: 1}, {Limit: 0}} {
		seen := map[string]bool{}
		pages := 0
		for {
			page, err := s.Audit(ctx, q)
			require.NoError(t, err)
			pages++
			require.LessOrEqual(t, pages, 10)
			if q.Limit > 0 {
				assert.LessOrEqual(t, len(page.Entries), q.Limit)
			}
			for _, e := range page.Entries {
				k := fmt.Sprint(e.Tenant, e.NewValue)
				assert.False(t, seen[k], "entry %s twice", k)
				seen[k] = true
			}
			if page.NextCursor == "" {
				break
			}
			q.Cursor = page.NextCursor
		}
		assert.Equal(t, want, seen, "pages of %d cover every entry once", q.Limit)
	}
	// One tenant, paged, in order of change.
	var vals []int64
	q := tenancy.AuditQuery{Tenant: "t1", Limit: 1}
	for range 10 {
		page, err := s.Audit(ctx, q)
		require.NoError(t, err)
		for _, e := range page.Entries {
			vals = append(vals, e.NewValue)
		}
		if page.NextCursor == "" {
			break
		}
		q.Cursor = page.NextCursor
	}
	assert.Equal(t, []int64{100, 103, 106}, vals)
}

func testUsage(t *testing.T, s tenancy.Store) {
	ctx := context.Background()
	d := tenancy.DefaultLimits()
	u, err := s.Usage(ctx, "a", T0, d)
	require.NoError(t, err)
	assert.Equal(t, tenancy.Usage{}, u)
	acquire(t, s, "a", "p1", T0, 5)
	acquire(t, s, "a", "p2", T0, 5)
	for range 3 {
		take(t, s, "a", T0, d.SnapshotsPerMinute)
	}
	require.True(t, reserve(t, s, "a", "r", 700, T0, d.LLMMonthlyBudget).Reserved)
	require.True(t, reserve(t, s, "a", "r2", 300, T0, d.LLMMonthlyBudget).Reserved)
	settle(t, s, "a", "r2", 120, T0)
	u, err = s.Usage(ctx, "a", T0, d)
	require.NoError(t, err)
	assert.Equal(t, tenancy.Usage{ActivePreviews: 2, SnapshotsLastMinute: 3, LLMSpent: 120, LLMReserved: 700}, u)
	u, err = s.Usage(ctx, "a", T0.Add(2*time.Hour), d)
	require.NoError(t, err)
	assert.Equal(t, tenancy.Usage{LLMSpent: 120}, u, "leases, rate and reservations run out; the month's spend stays")
}
