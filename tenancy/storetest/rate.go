package storetest

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening/tenancy"

	"github.com/systembuilderhub/hardening/tenancy/internal/storekit"
)

// RunRate is the conformance suite of tenancy.RateStore.
func RunRate(t *testing.T, newStore func(t *testing.T) RateBackend) {
	t.Run("Burst", func(t *testing.T) { testRateBurst(t, newStore(t)) })
	t.Run("Limits", func(t *testing.T) { testRateLimits(t, newStore(t)) })
	t.Run("WithBurst", func(t *testing.T) { testRateWithBurst(t, newStore(t)) })
	t.Run("SameAsGCRA", func(t *testing.T) { testRateSameAsGCRA(t, newStore(t)) })
	t.Run("Used", func(t *testing.T) { testRateUsed(t, newStore(t)) })
	t.Run("LongSpans", func(t *testing.T) { testRateLongSpans(t, newStore(t)) })
	t.Run("Across2p53", func(t *testing.T) { testRateAcross2p53(t, newStore(t)) })
}

// RateReq is a rate request of tests: quota, tenant, time and N per minute.
func RateReq(quota string, tenant tenancy.ID, now time.Time, limit int64) tenancy.RateRequest {
	return tenancy.RateRequest{Tenant: tenant, Quota: quota, Now: now, DefaultLimit: limit, Period: time.Minute}
}

func take(t *testing.T, s tenancy.RateStore, req tenancy.RateRequest) tenancy.RateResult {
	t.Helper()
	r, err := s.TakeRate(t.Context(), req)
	require.NoError(t, err)
	return r
}

func testRateBurst(t *testing.T, s RateBackend) {
	for i := range 10 {
		r := take(t, s, RateReq("orders", "a", T0, 10))
		require.True(t, r.Allowed, "burst %d", i)
		assert.Equal(t, int64(10), r.Limit)
		assert.Equal(t, int64(10), r.Burst)
		assert.Equal(t, int64(9-i), r.Remaining)
		assert.Equal(t, time.Duration(i+1)*6*time.Second, r.ResetAfter)
	}
	r := take(t, s, RateReq("orders", "a", T0, 10))
	assert.False(t, r.Allowed, "the 11th in the window")
	assert.Equal(t, int64(0), r.Remaining)
	assert.Equal(t, 6*time.Second, r.RetryAfter)
	assert.Equal(t, 60*time.Second, r.ResetAfter)

	r = take(t, s, RateReq("orders", "a", T0.Add(6*time.Second-time.Millisecond), 10))
	assert.False(t, r.Allowed)
	assert.Equal(t, time.Millisecond, r.RetryAfter)
	r = take(t, s, RateReq("orders", "a", T0.Add(6*time.Second), 10))
	assert.True(t, r.Allowed, "one more every 60/N seconds")
	assert.Equal(t, int64(0), r.Remaining)
	assert.False(t, take(t, s, RateReq("orders", "a", T0.Add(6*time.Second), 10)).Allowed)

	// Exactly N admitted per window at a steady pace.
	admitted := 0
	for ms := int64(0); ms < 60_000; ms += 500 {
		if take(t, s, RateReq("orders", "pace", T0.Add(time.Duration(ms)*time.Millisecond), 10)).Allowed {
			admitted++
		}
	}
	assert.Equal(t, 10+9, admitted, "burst of 10, then one per 6s over the remaining 54s")

	assert.True(t, take(t, s, RateReq("orders", "b", T0, 10)).Allowed, "tenants are independent")
	assert.True(t, take(t, s, RateReq("uploads", "a", T0, 10)).Allowed, "quotas are independent")

	hour := RateReq("hourly", "h", T0, 2)
	hour.Period = time.Hour
	take(t, s, hour)
	take(t, s, hour)
	r = take(t, s, hour)
	assert.False(t, r.Allowed)
	assert.Equal(t, 30*time.Minute, r.RetryAfter, "the period is the request's")
}

func testRateLimits(t *testing.T, s RateBackend) {
	r := take(t, s, RateReq("orders", "zero", T0, 0))
	assert.False(t, r.Allowed, "limit 0 admits nothing")
	assert.Equal(t, time.Minute, r.RetryAfter)
	r = take(t, s, RateReq("orders", "huge", T0, 100_000_000))
	assert.True(t, r.Allowed, "a limit above one per microsecond still works")
	assert.Equal(t, int64(100_000_000), r.Limit)
	for range 3 {
		r = take(t, s, RateReq("orders", "free", T0, tenancy.Unlimited))
		assert.True(t, r.Allowed)
		assert.Equal(t, tenancy.Unlimited, r.Limit, "Unlimited admits everything")
	}

	// An override beats the default, per quota.
	override(t, s, "c", "orders", 2)
	assert.True(t, take(t, s, RateReq("orders", "c", T0, 10)).Allowed)
	r = take(t, s, RateReq("orders", "c", T0, 10))
	assert.True(t, r.Allowed)
	assert.Equal(t, int64(2), r.Limit)
	r = take(t, s, RateReq("orders", "c", T0, 10))
	assert.False(t, r.Allowed)
	assert.Equal(t, 30*time.Second, r.RetryAfter)
	assert.Equal(t, int64(10), take(t, s, RateReq("uploads", "c", T0, 10)).Limit, "another quota keeps its default")

	override(t, s, "d", "orders", tenancy.Unlimited)
	for range 20 {
		require.True(t, take(t, s, RateReq("orders", "d", T0, 1)).Allowed, "an Unlimited override lifts the rate")
	}
	override(t, s, "d", "orders", 0)
	assert.False(t, take(t, s, RateReq("orders", "d", T0, 10)).Allowed, "an override of 0 admits nothing")
}

func testRateWithBurst(t *testing.T, s RateBackend) {
	req := RateReq("orders", "a", T0, 5) // one every 12 s
	req.Burst = 2
	r := take(t, s, req)
	assert.True(t, r.Allowed)
	assert.Equal(t, int64(2), r.Burst)
	assert.Equal(t, int64(1), r.Remaining)
	assert.True(t, take(t, s, req).Allowed)
	r = take(t, s, req)
	assert.False(t, r.Allowed, "a burst of 2")
	assert.Equal(t, 12*time.Second, r.RetryAfter)
	req.Now = T0.Add(12 * time.Second)
	assert.True(t, take(t, s, req).Allowed)
}

// testRateSameAsGCRA: a GCRA sequence under an injected clock gives the
// decisions of tenancy.GCRA, so identical decisions on every store.
func testRateSameAsGCRA(t *testing.T, s RateBackend) {
	rng := rand.New(rand.NewPCG(1, 2))
	var tat int64
	now := T0
	for i := range 300 {
		now = now.Add(time.Duration(rng.IntN(4000)) * time.Millisecond)
		req := RateReq("orders", "a", now, 7)
		req.Burst = int64(i/100 + 3)
		var want tenancy.RateResult
		tat, want = tenancy.GCRA(tat, now.UnixMicro(), 7, req.Burst, time.Minute)
		require.Equal(t, want, take(t, s, req), "decision %d at %v", i, now)
	}
}

func testRateUsed(t *testing.T, s RateBackend) {
	used := func(now time.Time) int64 {
		n, err := s.RateUsed(t.Context(), RateReq("orders", "a", now, 10))
		require.NoError(t, err)
		return n
	}
	assert.Equal(t, int64(0), used(T0))
	for range 3 {
		take(t, s, RateReq("orders", "a", T0, 10))
	}
	assert.Equal(t, int64(3), used(T0))
	assert.Equal(t, int64(2), used(T0.Add(6*time.Second)), "one unit back every 6 s")
	assert.Equal(t, int64(0), used(T0.Add(time.Hour)))
}

// testRateLongSpans: one unit a year with a burst of 300 takes the tat
// centuries ahead, past 2^53 µs since 1970 (the limit of exact doubles),
// and the tolerance to storekit.MaxTolerance; decisions stay exactly
// tenancy.GCRA's.
func testRateLongSpans(t *testing.T, s RateBackend) {
	const year = 366 * 24 * time.Hour
	var tat int64
	admitted := 0
	for i := range 290 {
		req := RateReq("archives", "a", T0.Add(time.Duration(2*i+1)*time.Microsecond), 1) // odd µs: past 2^53 a double would round them
		req.Period, req.Burst = year, 300
		var want tenancy.RateResult
		tat, want = tenancy.GCRA(tat, req.Now.UnixMicro(), 1, 300, year)
		got := take(t, s, req)
		require.Equal(t, want, got, "decision %d", i)
		if got.Allowed {
			admitted++
		}
	}
	assert.Greater(t, tat, int64(1)<<53, "the tat went past 2^53")
	assert.Equal(t, int(storekit.MaxTolerance/storekit.RateInterval(1, year)), admitted, "the burst is capped by MaxTolerance")
}

// testRateAcross2p53: decisions one µs apart while now and the tat cross
// 2^53 µs since 1970 (the year 2255), where a store computing in doubles
// must stop using absolute times whole; decisions and usage stay exactly
// tenancy.GCRA's.
func testRateAcross2p53(t *testing.T, s RateBackend) {
	const limit, burst, period = 1000, 3, 7 * time.Millisecond // one unit every 7 µs
	var tat int64
	for i := range 80 {
		now := int64(1)<<53 - 40 + int64(i)
		req := RateReq("edge", "a", time.UnixMicro(now), limit)
		req.Period, req.Burst = period, burst
		var want tenancy.RateResult
		tat, want = tenancy.GCRA(tat, now, limit, burst, period)
		require.Equal(t, want, take(t, s, req), "decision at 2^53%+d µs", now-int64(1)<<53)
		used, err := s.RateUsed(t.Context(), req)
		require.NoError(t, err)
		require.Equal(t, storekit.RateUsed(tat, now, limit, burst, period), used, "usage at 2^53%+d µs", now-int64(1)<<53)
	}
}
