package tenancy_test

import (
	"io/fs"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening/migrate"
	"github.com/systembuilderhub/hardening/tenancy"
)

func TestRowLevelSecuritySQLTemplate(t *testing.T) {
	got, err := tenancy.RowLevelSecuritySQL("app.widgets", "org_id")
	require.NoError(t, err)
	const cond = `"org_id" = nullif(current_setting('app.tenant_id', true), '') OR current_setting('app.cross_tenant', true) = 'on'`
	assert.Equal(t, `ALTER TABLE "app"."widgets" ENABLE ROW LEVEL SECURITY;
ALTER TABLE "app"."widgets" FORCE ROW LEVEL SECURITY;
CREATE POLICY hardening_tenant_isolation ON "app"."widgets"
    USING (`+cond+`)
    WITH CHECK (`+cond+`);
`, got)
}

// No SQL passes through a table or column name.
func TestRowLevelSecuritySQLRejectsInjection(t *testing.T) {
	for _, bad := range []string{
		"", "widgets; DROP TABLE users", `widgets" USING (true); --`, "widgets--", "wid gets", "Widgets",
		"1widgets", "$w", "a.b.c", ".widgets", "widgets.", "widgets'", "widgets\x00", "wïdgets", strings.Repeat("w", 64),
		"widgets(", "widgets/*", "pg_catalog.pg_class OR true",
	} {
		_, err := tenancy.RowLevelSecuritySQL(bad, "tenant_id")
		assert.ErrorIs(t, err, tenancy.ErrInvalidIdentifier, "table %q", bad)
		_, err = tenancy.RowLevelSecuritySQL("widgets", bad)
		assert.ErrorIs(t, err, tenancy.ErrInvalidIdentifier, "column %q", bad)
	}
	for _, good := range []string{"w", "_w", "widgets_2", "w$1", "public.widgets", strings.Repeat("w", 63)} {
		_, err := tenancy.RowLevelSecuritySQL(good, "tenant_id")
		assert.NoError(t, err, "table %q", good)
	}
	_, err := tenancy.RowLevelSecuritySQL("a.b", "a.b")
	assert.ErrorIs(t, err, tenancy.ErrInvalidIdentifier, "a column is never qualified")
}

// The kit's own tenant-owned tables use the same policy: Postgres
// migration 0002 created RowLevelSecuritySQL's policy on each, and 0006
// sets its condition to the function's current one.
func TestKitMigrationUsesTheTemplate(t *testing.T) {
	kit, err := migrate.KitMigrations(migrate.Postgres)
	require.NoError(t, err)
	body, err := fs.ReadFile(kit, "0002_tenancy.sql")
	require.NoError(t, err)
	fix, err := fs.ReadFile(kit, "0006_tenancy_rls_unset.sql")
	require.NoError(t, err)
	for _, table := range []string{"hardening_quota_overrides", "hardening_quota_audit", "hardening_quota_slots",
		"hardening_quota_rates", "hardening_quota_spend", "hardening_quota_reservations"} {
		want, err := tenancy.RowLevelSecuritySQL(table, "tenant_id")
		require.NoError(t, err)
		assert.Contains(t, string(body), "CREATE POLICY "+tenancy.PolicyName+` ON "`+table+`"`, table)
		_, policy, ok := strings.Cut(want, "CREATE POLICY ")
		require.True(t, ok)
		assert.Contains(t, string(fix), "ALTER POLICY "+policy, table)
	}
}
