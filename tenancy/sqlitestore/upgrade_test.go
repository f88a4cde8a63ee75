package sqlitestore_test

import (
	"io/fs"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening/internal/testenv"
	"github.com/systembuilderhub/hardening/migrate"
	"github.com/systembuilderhub/hardening/tenancy/sqlitestore"
	"github.com/systembuilderhub/hardening/tenancy/storetest"
)

// applyKit runs the kit's SQLite migration files whose version is in
// [from, to] on db, in order, as migrate.Up would.
func applyKit(t *testing.T, exec func(string), from, to int) {
	t.Helper()
	kit, err := migrate.KitMigrations(migrate.SQLite)
	require.NoError(t, err)
	entries, err := fs.ReadDir(kit, ".")
	require.NoError(t, err)
	for _, e := range entries {
		v, err := strconv.Atoi(strings.SplitN(e.Name(), "_", 2)[0])
		require.NoError(t, err)
		if v < from || v > to {
			continue
		}
		body, err := fs.ReadFile(kit, e.Name())
		require.NoError(t, err)
		exec(string(body))
	}
}

// TestUpgradeFromFixedQuotas writes the state of the three fixed quotas
// through the SQL of the schema before 0006 (overrides, slots, GCRA state,
// reservations, spend, audit: storetest.CheckFixedQuotasUpgrade's
// fixture), migrates, and reads it all back through the named quotas
// active_previews, snapshots and llm_budget.
func TestUpgradeFromFixedQuotas(t *testing.T) {
	db := testenv.OpenSQLite(t, t.TempDir()+"/old.db")
	applyKit(t, func(q string) { db.MustExec(q) }, 1, 4)
	t0 := storetest.T0
	ms := func(d time.Duration) int64 { return t0.Add(d).UnixMilli() }
	db.MustExec(`INSERT INTO hardening_quota_limits (tenant_id, active_previews, snapshots_per_minute, llm_monthly_budget_micros, updated_at)
		VALUES ('acme', 7, NULL, 250000000, ?), ('globex', NULL, 3, NULL, ?)`, ms(-time.Hour), ms(-time.Hour))
	for _, a := range []struct {
		tenant, field string
		old, new      int64
	}{{"acme", "active_previews", 5, 7}, {"acme", "llm_monthly_budget_micros", 100000000, 250000000}, {"globex", "snapshots_per_minute", 10, 3}} {
		db.MustExec(`INSERT INTO hardening_quota_audit (tenant_id, field, old_value, new_value, changed_by, changed_at, reason)
			VALUES (?, ?, ?, ?, 'root', ?, 'plan')`, a.tenant, a.field, a.old, a.new, ms(-time.Hour))
	}
	db.MustExec(`INSERT INTO hardening_active_previews (tenant_id, preview_id, lease_expires_at) VALUES ('acme', 'pv_1', ?), ('acme', 'pv_2', ?)`,
		ms(time.Hour), ms(time.Hour))
	db.MustExec(`INSERT INTO hardening_rate_gcra (tenant_id, resource, tat) VALUES ('acme', 'snapshots', ?)`, t0.Add(12*time.Second).UnixMicro())
	db.MustExec(`INSERT INTO hardening_llm_usage (tenant_id, month, spent_micros) VALUES ('acme', '2026-03', 1500000), ('acme', '2026-02', 99)`)
	db.MustExec(`INSERT INTO hardening_llm_reservations (tenant_id, id, month, amount_micros, expires_at) VALUES ('acme', 'r1', '2026-03', 400000, ?)`,
		ms(10*time.Minute))

	applyKit(t, func(q string) { db.MustExec(q) }, 5, 1<<30)

	s, err := sqlitestore.New(db)
	require.NoError(t, err)
	storetest.CheckFixedQuotasUpgrade(t, s)

	for _, old := range []string{"hardening_quota_limits", "hardening_active_previews", "hardening_rate_gcra", "hardening_llm_usage", "hardening_llm_reservations"} {
		var n int
		require.NoError(t, db.Get(&n, `SELECT count(*) FROM sqlite_master WHERE name = ?`, old))
		assert.Zero(t, n, "%s is gone", old)
	}
}

// TestUpgradeOversizedLimits: overrides above tenancy.MaxLimit, which the
// schema before 0006 accepted, carry over as unlimited rather than as
// values no store represents exactly.
func TestUpgradeOversizedLimits(t *testing.T) {
	db := testenv.OpenSQLite(t, t.TempDir()+"/old.db")
	applyKit(t, func(q string) { db.MustExec(q) }, 1, 4)
	db.MustExec(`INSERT INTO hardening_quota_limits (tenant_id, active_previews, snapshots_per_minute, llm_monthly_budget_micros, updated_at)
		VALUES ('huge', 9223372036854775807, 9007199254740992, 9223372036854775807, 0)`)
	applyKit(t, func(q string) { db.MustExec(q) }, 5, 1<<30)
	s, err := sqlitestore.New(db)
	require.NoError(t, err)
	storetest.CheckOversizedLimitsUpgrade(t, s)
}
