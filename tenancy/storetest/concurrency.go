package storetest

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening/tenancy"
)

const lease = time.Minute

// RunConcurrency is the conformance suite of tenancy.ConcurrencyStore.
func RunConcurrency(t *testing.T, newStore func(t *testing.T) ConcurrencyBackend) {
	t.Run("Slots", func(t *testing.T) { testSlots(t, newStore(t)) })
	t.Run("Limits", func(t *testing.T) { testSlotLimits(t, newStore(t)) })
	t.Run("Leases", func(t *testing.T) { testSlotLeases(t, newStore(t)) })
	t.Run("Concurrent", func(t *testing.T) { testSlotsConcurrent(t, newStore(t)) })
}

// SlotReq is a slot request of tests: a one-minute lease.
func SlotReq(quota string, tenant tenancy.ID, holder string, now time.Time, limit int64) tenancy.SlotRequest {
	return tenancy.SlotRequest{Tenant: tenant, Quota: quota, Holder: holder, Now: now, Lease: lease, DefaultLimit: limit}
}

func acquire(t *testing.T, s tenancy.ConcurrencyStore, req tenancy.SlotRequest) tenancy.SlotResult {
	t.Helper()
	res, err := s.AcquireSlot(t.Context(), req)
	require.NoError(t, err)
	return res
}

func held(t *testing.T, s tenancy.ConcurrencyStore, tenant tenancy.ID, quota string, now time.Time) int64 {
	t.Helper()
	n, err := s.SlotsHeld(t.Context(), tenant, quota, now)
	require.NoError(t, err)
	return n
}

func testSlots(t *testing.T, s ConcurrencyBackend) {
	ctx := t.Context()
	for i := range 3 {
		r := acquire(t, s, SlotReq("exports", "a", fmt.Sprint("p", i), T0, 3))
		assert.True(t, r.Held)
		assert.Equal(t, int64(i+1), r.Current)
		assert.Equal(t, int64(3), r.Limit)
		assert.Equal(t, T0.Add(lease).UnixMilli(), r.ExpiresAt.UnixMilli())
	}
	r := acquire(t, s, SlotReq("exports", "a", "p3", T0, 3))
	assert.False(t, r.Held, "over the limit")
	assert.Equal(t, int64(3), r.Current)
	assert.Equal(t, int64(3), r.Limit)

	r = acquire(t, s, SlotReq("exports", "a", "p1", T0, 3))
	assert.True(t, r.Held, "the same holder again counts once")
	assert.Equal(t, int64(3), r.Current)

	assert.True(t, acquire(t, s, SlotReq("exports", "b", "p3", T0, 3)).Held, "tenants are independent")
	assert.True(t, acquire(t, s, SlotReq("imports", "a", "p3", T0, 3)).Held, "quotas are independent")
	assert.Equal(t, int64(3), held(t, s, "a", "exports", T0))
	assert.Equal(t, int64(1), held(t, s, "a", "imports", T0))

	ok, err := s.ReleaseSlot(ctx, "a", "exports", "p1")
	require.NoError(t, err)
	assert.True(t, ok)
	ok, err = s.ReleaseSlot(ctx, "a", "exports", "p1")
	require.NoError(t, err)
	assert.False(t, ok, "release is idempotent")
	ok, err = s.ReleaseSlot(ctx, "a", "imports", "p0")
	require.NoError(t, err)
	assert.False(t, ok, "a holder of one quota holds nothing of another")

	r = acquire(t, s, SlotReq("exports", "a", "p3", T0, 3))
	assert.True(t, r.Held, "a released slot is free")
	assert.Equal(t, int64(3), r.Current)
}

func testSlotLimits(t *testing.T, s ConcurrencyBackend) {
	override(t, s, "a", "exports", 4)
	for i := range 4 {
		r := acquire(t, s, SlotReq("exports", "a", fmt.Sprint("p", i), T0, 2))
		assert.True(t, r.Held, "an override beats the default")
		assert.Equal(t, int64(4), r.Limit)
	}
	assert.False(t, acquire(t, s, SlotReq("exports", "a", "p5", T0, 2)).Held)

	override(t, s, "c", "exports", 0)
	assert.False(t, acquire(t, s, SlotReq("exports", "c", "p", T0, 3)).Held, "limit 0 admits nothing")
	assert.False(t, acquire(t, s, SlotReq("exports", "z", "p", T0, 0)).Held, "a default of 0 admits nothing")

	for i := range 20 {
		r := acquire(t, s, SlotReq("exports", "u", fmt.Sprint("p", i), T0, tenancy.Unlimited))
		require.True(t, r.Held, "Unlimited admits everything")
		assert.Equal(t, tenancy.Unlimited, r.Limit)
		assert.Equal(t, int64(i+1), r.Current, "and still counts")
	}
	override(t, s, "v", "exports", tenancy.Unlimited)
	for i := range 5 {
		require.True(t, acquire(t, s, SlotReq("exports", "v", fmt.Sprint("p", i), T0, 1)).Held, "an Unlimited override")
	}
}

func testSlotLeases(t *testing.T, s ConcurrencyBackend) {
	ctx := t.Context()
	require.True(t, acquire(t, s, SlotReq("exports", "a", "crashed", T0, 1)).Held)
	assert.False(t, acquire(t, s, SlotReq("exports", "a", "other", T0.Add(lease-time.Millisecond), 1)).Held, "lease still running")
	assert.Equal(t, int64(1), held(t, s, "a", "exports", T0.Add(lease-time.Millisecond)))
	assert.Equal(t, int64(0), held(t, s, "a", "exports", T0.Add(lease)), "a lease ending at now is over")
	r := acquire(t, s, SlotReq("exports", "a", "other", T0.Add(lease), 1))
	assert.True(t, r.Held, "a crashed holder's slot frees itself when its lease ends")
	assert.Equal(t, int64(1), r.Current)

	// Renewal keeps the slot past the first lease.
	t1 := T0.Add(lease)
	rn, err := s.RenewSlot(ctx, SlotReq("exports", "a", "other", t1.Add(lease/2), 0))
	require.NoError(t, err)
	assert.True(t, rn.Held)
	assert.Equal(t, t1.Add(lease/2+lease).UnixMilli(), rn.ExpiresAt.UnixMilli())
	assert.False(t, acquire(t, s, SlotReq("exports", "a", "third", t1.Add(lease+time.Second), 1)).Held, "a renewed slot is still held")

	// Renewing a lapsed or unknown slot fails.
	rn, err = s.RenewSlot(ctx, SlotReq("exports", "a", "other", t1.Add(3*lease), 0))
	require.NoError(t, err)
	assert.False(t, rn.Held)
	rn, err = s.RenewSlot(ctx, SlotReq("exports", "a", "never", T0, 0))
	require.NoError(t, err)
	assert.False(t, rn.Held)
}

// testSlotsConcurrent: 200 goroutines on a concurrency limit of 5: exactly
// 5 succeed.
func testSlotsConcurrent(t *testing.T, s ConcurrencyBackend) {
	var got atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := range 200 {
		wg.Go(func() {
			r, err := s.AcquireSlot(t.Context(), SlotReq("exports", "busy", fmt.Sprint("p", i), T0, 5))
			if err != nil {
				errs <- err
				return
			}
			if r.Held {
				got.Add(1)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	assert.Equal(t, int64(5), got.Load(), "exactly the limit acquires")
	assert.Equal(t, int64(5), held(t, s, "busy", "exports", T0))
}
