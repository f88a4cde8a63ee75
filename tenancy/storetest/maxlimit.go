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
	ctx := tenancy.WithTenant(t.Context(), "a")
	const huge = math.MaxInt64
	decls := func(limit int64) []tenancy.QuotasOption {
		return []tenancy.QuotasOption{tenancy.Concurrency("exports", limit, time.Minute), tenancy.Rate("orders", limit, time.Minute),
			tenancy.Budget("credits", limit, tenancy.Monthly), tenancy.WithClock(func() time.Time { return T0 })}
	}
	for i := range 3 {
		d := decls(5)
		d[i] = decls(huge)[i]
		_, err := tenancy.NewQuotas(s, d...)
		assert.ErrorIs(t, err, tenancy.ErrInvalidLimit, "a default above MaxLimit")
	}
	q, err := tenancy.NewQuotas(s, decls(5)...)
	require.NoError(t, err)
	for _, name := range []string{"exports", "orders", "credits"} {
		for _, v := range []int64{huge, tenancy.MaxLimit + 1, -2} {
			_, err := q.SetLimits(ctx, "a", tenancy.Limits{name: v}, "admin", "out of range")
			assert.ErrorIs(t, err, tenancy.ErrInvalidLimit, "an override of %d", v)
		}
	}
	l, err := q.Limits(ctx, "a")
	require.NoError(t, err)
	assert.Equal(t, q.Defaults(), l, "nothing was stored")
	page, err := q.Audit(ctx, tenancy.AuditQuery{Tenant: "a"})
	require.NoError(t, err)
	assert.Empty(t, page.Entries, "nothing was audited")

	const maxL = tenancy.MaxLimit
	l, err = q.SetLimits(ctx, "a", tenancy.Limits{"exports": maxL, "orders": maxL, "credits": maxL}, "admin", "the most")
	require.NoError(t, err)
	assert.Equal(t, tenancy.Limits{"exports": maxL, "orders": maxL, "credits": maxL}, l)
	checkMax(t, q, ctx)

	// Defaults of MaxLimit (no override) behave the same.
	q, err = tenancy.NewQuotas(s, decls(maxL)...)
	require.NoError(t, err)
	checkMax(t, q, tenancy.WithTenant(t.Context(), "d"))
}

func checkMax(t *testing.T, q *tenancy.Quotas, ctx context.Context) {
	t.Helper()
	const maxL = tenancy.MaxLimit
	slot, err := q.Acquire(ctx, "exports", "p")
	require.NoError(t, err)
	assert.Equal(t, int64(maxL), slot.Limit)
	rate, err := q.Allow(ctx, "orders")
	require.NoError(t, err)
	assert.Equal(t, int64(maxL), rate.Limit)
	assert.Equal(t, int64(maxL-1), rate.Remaining)
	r, err := q.Reserve(ctx, "credits", maxL)
	require.NoError(t, err, "the whole budget fits exactly")
	assert.Equal(t, int64(maxL), r.Result.Limit)
	assert.Equal(t, int64(maxL), r.Result.Outstanding)
	_, err = q.Reserve(ctx, "credits", 1)
	var rej *tenancy.Rejection
	require.ErrorAs(t, err, &rej)
	assert.Equal(t, int64(maxL), rej.Limit)
	assert.Equal(t, int64(maxL), rej.Current)
	sr, err := q.Settle(ctx, r, maxL)
	require.NoError(t, err)
	assert.Equal(t, int64(maxL), sr.Spent)
}
