package sqlitestore

import (
	"context"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/systembuilderhub/hardening/internal/sqlitex"
	"github.com/systembuilderhub/hardening/tenancy"
)

// purgeSlots frees the slots of quota whose lease ended at or before now.
func purgeSlots(ctx context.Context, c queryer, tenant tenancy.ID, quota string, now time.Time) error {
	_, err := c.ExecContext(ctx, `DELETE FROM hardening_quota_slots WHERE tenant_id = ? AND quota = ? AND lease_expires_at <= ?`,
		tenant, quota, now.UnixMilli())
	return err
}

func slotsHeld(ctx context.Context, c queryer, tenant tenancy.ID, quota string) (int64, error) {
	return count(ctx, c, `SELECT count(*) FROM hardening_quota_slots WHERE tenant_id = ? AND quota = ?`, tenant, quota)
}

// AcquireSlot implements tenancy.ConcurrencyStore.
func (s *Store) AcquireSlot(ctx context.Context, req tenancy.SlotRequest) (res tenancy.SlotResult, err error) {
	err = sqlitex.Immediate(ctx, s.db, func(c *sqlx.Conn) error {
		res = tenancy.SlotResult{}
		if err := purgeSlots(ctx, c, req.Tenant, req.Quota, req.Now); err != nil {
			return err
		}
		var err error
		if res.Limit, err = limitOf(ctx, c, req.Tenant, req.Quota, req.DefaultLimit); err != nil {
			return err
		}
		held, err := count(ctx, c, `SELECT count(*) FROM hardening_quota_slots WHERE tenant_id = ? AND quota = ? AND holder = ?`, req.Tenant, req.Quota, req.Holder)
		if err != nil {
			return err
		}
		if res.Current, err = slotsHeld(ctx, c, req.Tenant, req.Quota); err != nil {
			return err
		}
		if held == 0 && res.Limit != tenancy.Unlimited && res.Current >= res.Limit {
			return nil
		}
		exp := req.Now.Add(req.Lease).UnixMilli()
		if _, err := c.ExecContext(ctx, `INSERT INTO hardening_quota_slots (tenant_id, quota, holder, lease_expires_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (tenant_id, quota, holder) DO UPDATE SET lease_expires_at = excluded.lease_expires_at`, req.Tenant, req.Quota, req.Holder, exp); err != nil {
			return err
		}
		res.Held, res.ExpiresAt = true, time.UnixMilli(exp)
		if held == 0 {
			res.Current++
		}
		return nil
	})
	return res, err
}

// RenewSlot implements tenancy.ConcurrencyStore.
func (s *Store) RenewSlot(ctx context.Context, req tenancy.SlotRequest) (res tenancy.SlotResult, err error) {
	err = sqlitex.Immediate(ctx, s.db, func(c *sqlx.Conn) error {
		res = tenancy.SlotResult{}
		if err := purgeSlots(ctx, c, req.Tenant, req.Quota, req.Now); err != nil {
			return err
		}
		exp := req.Now.Add(req.Lease).UnixMilli()
		r, err := c.ExecContext(ctx, `UPDATE hardening_quota_slots SET lease_expires_at = ? WHERE tenant_id = ? AND quota = ? AND holder = ?`,
			exp, req.Tenant, req.Quota, req.Holder)
		if err != nil {
			return err
		}
		if n, _ := r.RowsAffected(); n == 1 {
			res.Held, res.ExpiresAt = true, time.UnixMilli(exp)
		}
		res.Current, err = slotsHeld(ctx, c, req.Tenant, req.Quota)
		return err
	})
	return res, err
}

// ReleaseSlot implements tenancy.ConcurrencyStore.
func (s *Store) ReleaseSlot(ctx context.Context, tenant tenancy.ID, quota, holder string) (bool, error) {
	return deleteOne(ctx, s.db, `DELETE FROM hardening_quota_slots WHERE tenant_id = ? AND quota = ? AND holder = ?`, tenant, quota, holder)
}

// SlotsHeld implements tenancy.ConcurrencyStore. It only reads.
func (s *Store) SlotsHeld(ctx context.Context, tenant tenancy.ID, quota string, now time.Time) (int64, error) {
	return count(ctx, s.db, `SELECT count(*) FROM hardening_quota_slots WHERE tenant_id = ? AND quota = ? AND lease_expires_at > ?`,
		tenant, quota, now.UnixMilli())
}
