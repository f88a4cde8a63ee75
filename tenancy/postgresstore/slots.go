package postgresstore

import (
	"context"
	"time"

	"github.com/systembuilderhub/hardening/tenancy"
)

// AcquireSlot implements tenancy.ConcurrencyStore.
func (s *Store) AcquireSlot(ctx context.Context, req tenancy.SlotRequest) (tenancy.SlotResult, error) {
	var res tenancy.SlotResult
	exp := req.Now.Add(req.Lease).UnixMilli()
	if err := s.scan(ctx, "acquire slot", `SELECT held, current, quota_limit FROM hardening_quota_acquire_slot($1, $2, $3, $4, $5, $6)`,
		[]any{string(req.Tenant), req.Quota, req.Holder, req.Now.UnixMilli(), exp, req.DefaultLimit},
		&res.Held, &res.Current, &res.Limit); err != nil {
		return tenancy.SlotResult{}, err
	}
	if res.Held {
		res.ExpiresAt = time.UnixMilli(exp)
	}
	return res, nil
}

// RenewSlot implements tenancy.ConcurrencyStore.
func (s *Store) RenewSlot(ctx context.Context, req tenancy.SlotRequest) (tenancy.SlotResult, error) {
	var res tenancy.SlotResult
	exp := req.Now.Add(req.Lease).UnixMilli()
	if err := s.scan(ctx, "renew slot", `SELECT held, current FROM hardening_quota_renew_slot($1, $2, $3, $4, $5)`,
		[]any{string(req.Tenant), req.Quota, req.Holder, req.Now.UnixMilli(), exp}, &res.Held, &res.Current); err != nil {
		return tenancy.SlotResult{}, err
	}
	if res.Held {
		res.ExpiresAt = time.UnixMilli(exp)
	}
	return res, nil
}

// ReleaseSlot implements tenancy.ConcurrencyStore.
func (s *Store) ReleaseSlot(ctx context.Context, tenant tenancy.ID, quota, holder string) (bool, error) {
	var ok bool
	err := s.scan(ctx, "release slot", `SELECT hardening_quota_release_slot($1, $2, $3)`, []any{string(tenant), quota, holder}, &ok)
	return ok, err
}

// SlotsHeld implements tenancy.ConcurrencyStore. It only reads.
func (s *Store) SlotsHeld(ctx context.Context, tenant tenancy.ID, quota string, now time.Time) (int64, error) {
	var n int64
	err := s.scan(ctx, "slots held", `SELECT hardening_quota_slots_held($1, $2, $3)`, []any{string(tenant), quota, now.UnixMilli()}, &n)
	return n, err
}
