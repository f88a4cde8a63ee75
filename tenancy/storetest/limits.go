package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening/tenancy"
)

// RunLimits is the conformance suite of tenancy.LimitStore.
func RunLimits(t *testing.T, newStore func(t *testing.T) tenancy.LimitStore) {
	t.Run("OverridesAndAudit", func(t *testing.T) { testLimitsAudit(t, newStore(t)) })
	t.Run("AuditPaging", func(t *testing.T) { testAuditPaging(t, newStore(t)) })
}

var testDefaults = tenancy.Limits{"exports": 5, "orders": 10, "credits": 100_000_000}

func setLimits(t *testing.T, s tenancy.LimitStore, tenant tenancy.ID, set tenancy.Limits, by, reason string, now time.Time) tenancy.Limits {
	t.Helper()
	l, err := s.SetLimits(t.Context(), tenancy.SetLimitsRequest{Tenant: tenant, Defaults: testDefaults, Set: set, ChangedBy: by, Reason: reason, Now: now})
	require.NoError(t, err)
	return l
}

func testLimitsAudit(t *testing.T, s tenancy.LimitStore) {
	ctx := t.Context()
	l, err := s.Limits(ctx, "a", testDefaults)
	require.NoError(t, err)
	assert.Equal(t, testDefaults, l, "no overrides: the defaults")

	l = setLimits(t, s, "a", tenancy.Limits{"exports": 10}, "admin-1", "bigger plan", T0)
	assert.Equal(t, tenancy.Limits{"exports": 10, "orders": 10, "credits": 100_000_000}, l)
	t1 := T0.Add(time.Hour)
	l = setLimits(t, s, "a", tenancy.Limits{"exports": 20, "credits": 250_000_000}, "admin-2", "again", t1)
	assert.Equal(t, tenancy.Limits{"exports": 20, "orders": 10, "credits": 250_000_000}, l)
	got, err := s.Limits(ctx, "a", testDefaults)
	require.NoError(t, err)
	assert.Equal(t, l, got)
	other, err := s.Limits(ctx, "b", testDefaults)
	require.NoError(t, err)
	assert.Equal(t, testDefaults, other, "overrides are per tenant")

	// Defaults changed later still apply to quotas without override; a
	// quota no longer declared is not reported.
	got, err = s.Limits(ctx, "a", tenancy.Limits{"orders": 99, "exports": 1})
	require.NoError(t, err)
	assert.Equal(t, tenancy.Limits{"orders": 99, "exports": 20}, got)

	t2 := t1.Add(time.Minute)
	l = setLimits(t, s, "a", tenancy.Limits{"orders": tenancy.Unlimited}, "admin-1", "lift", t2)
	assert.Equal(t, tenancy.Unlimited, l["orders"])
	l = setLimits(t, s, "a", tenancy.Limits{"orders": 0}, "admin-1", "stop", t2)
	assert.Equal(t, int64(0), l["orders"])

	page, err := s.Audit(ctx, tenancy.AuditQuery{Tenant: "a"})
	require.NoError(t, err)
	assert.Empty(t, page.NextCursor)
	want := []tenancy.AuditEntry{
		{Tenant: "a", Quota: "exports", OldValue: 5, NewValue: 10, ChangedBy: "admin-1", ChangedAt: T0, Reason: "bigger plan"},
		{Tenant: "a", Quota: "credits", OldValue: 100_000_000, NewValue: 250_000_000, ChangedBy: "admin-2", ChangedAt: t1, Reason: "again"},
		{Tenant: "a", Quota: "exports", OldValue: 10, NewValue: 20, ChangedBy: "admin-2", ChangedAt: t1, Reason: "again"},
		{Tenant: "a", Quota: "orders", OldValue: 10, NewValue: tenancy.Unlimited, ChangedBy: "admin-1", ChangedAt: t2, Reason: "lift"},
		{Tenant: "a", Quota: "orders", OldValue: tenancy.Unlimited, NewValue: 0, ChangedBy: "admin-1", ChangedAt: t2, Reason: "stop"},
	}
	require.Len(t, page.Entries, len(want))
	for i := range want {
		e := page.Entries[i]
		assert.True(t, want[i].ChangedAt.Equal(e.ChangedAt), "changed_at %v", e.ChangedAt)
		e.ChangedAt = want[i].ChangedAt
		assert.Equal(t, want[i], e, "entry %d: one per quota, in name order within a change", i)
	}

	page, err = s.Audit(ctx, tenancy.AuditQuery{Tenant: "a", Since: t1})
	require.NoError(t, err)
	assert.Len(t, page.Entries, 4, "since filters by changed_at")
	page, err = s.Audit(ctx, tenancy.AuditQuery{Tenant: "b"})
	require.NoError(t, err)
	assert.Empty(t, page.Entries)
	_, err = s.Audit(ctx, tenancy.AuditQuery{Cursor: "%%garbage"})
	assert.ErrorIs(t, err, tenancy.ErrBadCursor)
}

func testAuditPaging(t *testing.T, s tenancy.LimitStore) {
	want := map[string]bool{}
	for i := range 7 {
		tenant := tenancy.ID([]string{"t1", "t2", "t3"}[i%3])
		v := int64(100 + i)
		setLimits(t, s, tenant, tenancy.Limits{"orders": v}, "admin", "", T0.Add(time.Duration(i)*time.Second))
		want[fmt.Sprint(tenant, v)] = true
	}
	for _, q := range []tenancy.AuditQuery{{Limit: 2}, {Limit: 3}, {Limit: 1}, {Limit: 0}} {
		seen := map[string]bool{}
		pages := 0
		for {
			page, err := s.Audit(t.Context(), q)
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
		page, err := s.Audit(t.Context(), q)
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
