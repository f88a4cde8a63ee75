package postgresstore_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening/tenancy"
	"github.com/systembuilderhub/hardening/tenancy/storetest"
)

// TestOneStatementPerMethod: every method of the store, the decisions and
// the reads, sends exactly one statement, as the package doc's table says.
func TestOneStatementPerMethod(t *testing.T) {
	p := migrated(t)
	db, c := p.OpenCounting(t)
	s := newStore(t, db)
	ctx := t.Context()
	t0 := storetest.T0
	calls := []struct {
		name string
		call func() error
	}{
		{"TakeRate", func() error { _, err := s.TakeRate(ctx, storetest.RateReq("orders", "a", t0, 5)); return err }},
		{"RateUsed", func() error { _, err := s.RateUsed(ctx, storetest.RateReq("orders", "a", t0, 5)); return err }},
		{"AcquireSlot", func() error { _, err := s.AcquireSlot(ctx, storetest.SlotReq("exports", "a", "h", t0, 5)); return err }},
		{"RenewSlot", func() error { _, err := s.RenewSlot(ctx, storetest.SlotReq("exports", "a", "h", t0, 5)); return err }},
		{"SlotsHeld", func() error { _, err := s.SlotsHeld(ctx, "a", "exports", t0); return err }},
		{"ReleaseSlot", func() error { _, err := s.ReleaseSlot(ctx, "a", "exports", "h"); return err }},
		{"Reserve", func() error {
			_, err := s.Reserve(ctx, storetest.ReserveReq("credits", "a", "r", 1, t0, 5))
			return err
		}},
		{"Reserve (refused)", func() error {
			_, err := s.Reserve(ctx, storetest.ReserveReq("credits", "a", "r2", 9, t0, 5))
			return err
		}},
		{"Settle", func() error {
			_, err := s.Settle(ctx, tenancy.SettleRequest{Tenant: "a", Quota: "credits", ReservationID: "r", Actual: 1, Now: t0, Period: "2026-03"})
			return err
		}},
		{"Cancel", func() error { _, err := s.Cancel(ctx, "a", "credits", "r"); return err }},
		{"BudgetUsage", func() error { _, err := s.BudgetUsage(ctx, "a", "credits", "2026-03", t0); return err }},
		{"SetLimits", func() error {
			_, err := s.SetLimits(ctx, tenancy.SetLimitsRequest{Tenant: "a", Defaults: tenancy.Limits{"orders": 5, "exports": 5},
				Set: tenancy.Limits{"orders": 7, "exports": 2}, ChangedBy: "admin", Now: t0})
			return err
		}},
		{"Limits", func() error { _, err := s.Limits(ctx, "a", tenancy.Limits{"orders": 5}); return err }},
		{"Audit", func() error { _, err := s.Audit(ctx, tenancy.AuditQuery{}); return err }},
		{"Audit(tenant)", func() error {
			_, err := s.Audit(ctx, tenancy.AuditQuery{Tenant: "a", Since: t0.Add(-time.Hour)})
			return err
		}},
	}
	for round := range 2 { // the first and a later call: statement caching changes nothing
		for _, call := range calls {
			before := c.N()
			require.NoError(t, call.call(), call.name)
			assert.Equal(t, int64(1), c.N()-before, "%s (round %d): one statement", call.name, round+1)
		}
	}
}
