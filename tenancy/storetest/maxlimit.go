package storetest

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening/tenancy"
)

// testMaxLimit: limits above tenancy.MaxLimit never reach the store, and
// MaxLimit itself comes back exactly from every decision (Redis scripts
// compute in doubles: 2^53-1 is the largest integer they hold exactly).
func testMaxLimit(t *testing.T, s tenancy.Store) {
	ctx := context.Background()
	huge := int64(math.MaxInt64)
	hugeMicros := tenancy.Micros(math.MaxInt64)
	_, err := tenancy.NewQuotas(s, tenancy.WithDefaults(tenancy.Limits{SnapshotsPerMinute: huge}))
	assert.ErrorIs(t, err, tenancy.ErrInvalidLimit, "a default above MaxLimit")
	q, err := tenancy.NewQuotas(s, tenancy.WithClock(func() time.Time { return T0 }))
	require.NoError(t, err)
	for _, p := range []tenancy.LimitsPatch{{ActivePreviews: &huge}, {SnapshotsPerMinute: &huge}, {LLMMonthlyBudget: &hugeMicros}} {
		_, err := q.UpdateLimits(ctx, "a", p, "admin", "too much")
		assert.ErrorIs(t, err, tenancy.ErrInvalidLimit, "an override above MaxLimit")
	}
	l, err := s.Limits(ctx, "a", tenancy.DefaultLimits())
	require.NoError(t, err)
	assert.Equal(t, tenancy.DefaultLimits(), l, "nothing was stored")
	page, err := s.Audit(ctx, tenancy.AuditQuery{Tenant: "a"})
	require.NoError(t, err)
	assert.Empty(t, page.Entries, "nothing was audited")

	maxL, maxM := int64(tenancy.MaxLimit), tenancy.Micros(tenancy.MaxLimit)
	l, err = q.UpdateLimits(ctx, "a", tenancy.LimitsPatch{ActivePreviews: &maxL, SnapshotsPerMinute: &maxL, LLMMonthlyBudget: &maxM}, "admin", "the most")
	require.NoError(t, err)
	assert.Equal(t, tenancy.Limits{ActivePreviews: maxL, SnapshotsPerMinute: maxL, LLMMonthlyBudget: maxM}, l)

	slot := acquire(t, s, "a", "p", T0, 5)
	assert.True(t, slot.Held)
	assert.Equal(t, maxL, slot.Limit)
	rate := take(t, s, "a", T0, 10)
	assert.True(t, rate.Allowed)
	assert.Equal(t, maxL, rate.Limit)
	assert.Equal(t, maxL-1, rate.Remaining)
	b := reserve(t, s, "a", "all", maxM, T0, 1_000)
	require.True(t, b.Reserved, "the whole budget fits exactly")
	assert.Equal(t, maxM, b.Budget)
	assert.Equal(t, maxM, b.Outstanding)
	b = reserve(t, s, "a", "one-more", 1, T0, 1_000)
	assert.False(t, b.Reserved)
	assert.Equal(t, maxM, b.Budget)
	assert.Equal(t, maxM, b.Outstanding)
	assert.Equal(t, maxM, settle(t, s, "a", "all", maxM, T0).Spent)

	// Defaults of MaxLimit (no override) behave the same.
	slot = acquire(t, s, "d", "p", T0, maxL)
	assert.Equal(t, maxL, slot.Limit)
	rate = take(t, s, "d", T0, maxL)
	assert.Equal(t, maxL, rate.Limit)
	assert.Equal(t, maxL-1, rate.Remaining)
	assert.Equal(t, maxM, reserve(t, s, "d", "r", maxM, T0, maxM).Budget)
}
