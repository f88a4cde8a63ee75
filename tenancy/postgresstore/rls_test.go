package postgresstore_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening/tenancy"
	"github.com/systembuilderhub/hardening/tenancy/storetest"
)

// Every table of the tenancy migration is under forced row-level security with
// the tenant policy.
func TestEveryTableUnderRLS(t *testing.T) {
	p := migrated(t)
	var tables []struct {
		Name   string `db:"relname"`
		RLS    bool   `db:"relrowsecurity"`
		Forced bool   `db:"relforcerowsecurity"`
		Policy int    `db:"policies"`
	}
	require.NoError(t, p.DB.Select(&tables, `SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,
		(SELECT count(*) FROM pg_policy pol WHERE pol.polrelid = c.oid AND pol.polname = $1) AS policies
		FROM pg_class c WHERE c.relnamespace = $2::regnamespace AND c.relkind = 'r' AND c.relname LIKE 'hardening\_quota\_%'`, tenancy.PolicyName, p.Schema))
	require.Len(t, tables, 6)
	for _, tb := range tables {
		assert.True(t, tb.RLS && tb.Forced && tb.Policy == 1, "%s: RLS %v, forced %v, policies %d", tb.Name, tb.RLS, tb.Forced, tb.Policy)
	}
}

// The application role reads nothing of the store's state outside the
// store's own statements, and one tenant's statements see only its rows.
func TestAppRoleSeesNoQuotaStateWithoutTenant(t *testing.T) {
	p := migrated(t)
	app := p.AppRole(t)
	s := newStore(t, app.DB)
	ctx := t.Context()
	_, err := s.AcquireSlot(ctx, storetest.SlotReq("exports", "a", "h", storetest.T0, 5))
	require.NoError(t, err)
	_, err = s.SetLimits(ctx, tenancy.SetLimitsRequest{Tenant: "b", Defaults: tenancy.Limits{"orders": 1}, Set: tenancy.Limits{"orders": 2},
		ChangedBy: "admin", Now: storetest.T0})
	require.NoError(t, err)

	for _, table := range []string{"hardening_quota_slots", "hardening_quota_overrides", "hardening_quota_audit"} {
		var n int
		require.NoError(t, app.DB.Get(&n, `SELECT count(*) FROM `+table))
		assert.Zero(t, n, "%s as the app role with no tenant", table)
		require.NoError(t, p.DB.Get(&n, `SELECT count(*) FROM `+table))
		assert.Equal(t, 1, n, "%s as the superuser", table)
	}
	page, err := s.Audit(ctx, tenancy.AuditQuery{})
	require.NoError(t, err)
	assert.Len(t, page.Entries, 1, "the store's cross-tenant audit read works under RLS")
	page, err = s.Audit(ctx, tenancy.AuditQuery{Tenant: "a"})
	require.NoError(t, err)
	assert.Empty(t, page.Entries)
}

// Attack: after the store's functions ran on a pooled connection,
// app.tenant_id is the empty string there (not NULL); the kit's policies must still
// refuse a write, and show no row, to code with no tenant set.
func TestAppRoleNoTenantAfterStoreUse(t *testing.T) {
	p := migrated(t)
	app := p.AppRole(t)
	app.DB.SetMaxOpenConns(1)
	s := newStore(t, app.DB)
	_, err := s.Limits(t.Context(), "a", tenancy.Limits{"orders": 1})
	require.NoError(t, err)
	_, err = app.DB.Exec(`INSERT INTO hardening_quota_overrides (tenant_id, quota, value, updated_at) VALUES ('', 'orders', 9, 0)`)
	assert.ErrorContains(t, err, "row-level security", "no tenant: no write")
	_, err = app.DB.Exec(`INSERT INTO hardening_quota_audit (tenant_id, quota, old_value, new_value, changed_by, changed_at) VALUES ('', 'orders', 1, 9, 'forged', 0)`)
	assert.ErrorContains(t, err, "row-level security", "no tenant: no forged audit entry")
}
