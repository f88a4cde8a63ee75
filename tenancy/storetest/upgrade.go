package storetest

import (
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening/tenancy"
)

// CheckFixedQuotasUpgrade reads back, through the named quotas the fixed
// quotas of earlier versions became (active_previews, snapshots,
// llm_budget), the state an upgrade test wrote in the store's old layout
// and then upgraded. The fixture, at T0 (rates on the request's clock):
//
//   - overrides: acme active previews 7 and LLM budget 250,000,000 micros;
//     globex snapshots 3 a minute;
//   - audit, by root with reason "plan" at T0-1h: acme active previews
//     5 -> 7, acme LLM budget 100,000,000 -> 250,000,000, globex snapshots
//     10 -> 3;
//   - acme holds preview slots pv_1 and pv_2, leases ending at T0+1h;
//   - acme's snapshot rate (10 a minute) has its tat at T0+12s: 2 used;
//   - acme spent 1,500,000 micros in 2026-03 (and 99 in 2026-02) and holds
//     reservation r1 of 400,000 in 2026-03, expiring at T0+10m.
func CheckFixedQuotasUpgrade(t *testing.T, s tenancy.Store) {
	t.Helper()
	q, err := tenancy.NewQuotas(s, tenancy.Concurrency("active_previews", 5, time.Hour), tenancy.Rate("snapshots", 10, time.Minute),
		tenancy.Budget("llm_budget", 100_000_000, tenancy.Monthly), tenancy.WithClock(func() time.Time { return T0 }))
	require.NoError(t, err)
	ctx := tenancy.WithTenant(t.Context(), "acme")

	l, err := q.Limits(ctx, "acme")
	require.NoError(t, err)
	assert.Equal(t, tenancy.Limits{"active_previews": 7, "snapshots": 10, "llm_budget": 250_000_000}, l, "overrides")
	l, err = q.Limits(ctx, "globex")
	require.NoError(t, err)
	assert.Equal(t, int64(3), l["snapshots"])

	u, err := q.Usage(ctx, "acme")
	require.NoError(t, err)
	assert.Equal(t, tenancy.Usage{"active_previews": {Used: 2}, "snapshots": {Used: 2}, "llm_budget": {Used: 1_500_000, Reserved: 400_000}}, u,
		"slots, GCRA state, spend and reservations")

	page, err := q.Audit(ctx, tenancy.AuditQuery{})
	require.NoError(t, err)
	var got []string
	for _, e := range page.Entries {
		got = append(got, string(e.Tenant)+" "+e.Quota+" "+strconv.FormatInt(e.OldValue, 10)+"->"+strconv.FormatInt(e.NewValue, 10)+
			" "+e.ChangedBy+" "+e.Reason+" "+e.ChangedAt.UTC().Format(time.RFC3339))
	}
	at := T0.Add(-time.Hour).Format(time.RFC3339)
	assert.Equal(t, []string{"acme active_previews 5->7 root plan " + at, "acme llm_budget 100000000->250000000 root plan " + at,
		"globex snapshots 10->3 root plan " + at}, got, "audit by quota name")

	sr, err := q.Settle(ctx, tenancy.Reservation{ID: "r1", Tenant: "acme", Quota: "llm_budget", Amount: 400_000}, 300_000)
	require.NoError(t, err)
	assert.Equal(t, tenancy.SettleResult{Found: true, Spent: 1_800_000}, sr, "an open reservation settles after the upgrade")
	ok, err := q.Release(ctx, "active_previews", "pv_1")
	require.NoError(t, err)
	assert.True(t, ok, "a held slot releases after the upgrade")
	for i := range 8 {
		_, err := q.Allow(ctx, "snapshots")
		require.NoError(t, err, "snapshot %d: the rate goes on from its stored state", i)
	}
	_, err = q.Allow(ctx, "snapshots")
	assert.Error(t, err)
}

// CheckOversizedLimitsUpgrade reads back tenant "huge", whose overrides an
// upgrade test wrote in the store's old layout above tenancy.MaxLimit
// (versions before named quotas accepted up to 2^63-1): active previews
// 2^63-1, snapshots 2^53 a minute and LLM budget 2^63-1 micros. Each
// carries over as tenancy.Unlimited, what such a limit meant, and the
// snapshot rate then allows.
func CheckOversizedLimitsUpgrade(t *testing.T, s tenancy.Store) {
	t.Helper()
	q, err := tenancy.NewQuotas(s, tenancy.Concurrency("active_previews", 5, time.Hour), tenancy.Rate("snapshots", 10, time.Minute),
		tenancy.Budget("llm_budget", 100_000_000, tenancy.Monthly), tenancy.WithClock(func() time.Time { return T0 }))
	require.NoError(t, err)
	l, err := q.Limits(t.Context(), "huge")
	require.NoError(t, err)
	assert.Equal(t, tenancy.Limits{"active_previews": tenancy.Unlimited, "snapshots": tenancy.Unlimited, "llm_budget": tenancy.Unlimited}, l)
	res, err := q.Allow(tenancy.WithTenant(t.Context(), "huge"), "snapshots")
	require.NoError(t, err)
	assert.True(t, res.Allowed)
	assert.Equal(t, tenancy.Unlimited, res.Limit)
}
