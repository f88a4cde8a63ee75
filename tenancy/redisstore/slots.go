package redisstore

import (
	"context"
	"strconv"
	"time"

	"github.com/systembuilderhub/hardening/tenancy"
)

// AcquireSlot implements tenancy.ConcurrencyStore.
func (s *Store) AcquireSlot(ctx context.Context, req tenancy.SlotRequest) (tenancy.SlotResult, error) {
	exp := req.Now.Add(req.Lease).UnixMilli()
	r, err := ints(acquireScript.Run(ctx, s.rdb, []string{s.key(req.Tenant, "slots:"+req.Quota), s.key(req.Tenant, "limits")},
		req.Now.UnixMilli(), exp, req.Holder, req.Quota, req.DefaultLimit).Result())
	if err != nil {
		return tenancy.SlotResult{}, err
	}
	res := tenancy.SlotResult{Held: r[0] == 1, Current: r[1], Limit: r[2]}
	if res.Held {
		res.ExpiresAt = time.UnixMilli(exp)
	}
	return res, nil
}

// RenewSlot implements tenancy.ConcurrencyStore.
func (s *Store) RenewSlot(ctx context.Context, req tenancy.SlotRequest) (tenancy.SlotResult, error) {
	exp := req.Now.Add(req.Lease).UnixMilli()
	r, err := ints(renewScript.Run(ctx, s.rdb, []string{s.key(req.Tenant, "slots:"+req.Quota)}, req.Now.UnixMilli(), exp, req.Holder).Result())
	if err != nil {
		return tenancy.SlotResult{}, err
	}
	res := tenancy.SlotResult{Held: r[0] == 1, Current: r[1]}
	if res.Held {
		res.ExpiresAt = time.UnixMilli(exp)
	}
	return res, nil
}

// ReleaseSlot implements tenancy.ConcurrencyStore.
func (s *Store) ReleaseSlot(ctx context.Context, tenant tenancy.ID, quota, holder string) (bool, error) {
	n, err := s.rdb.ZRem(ctx, s.key(tenant, "slots:"+quota), holder).Result()
	return n == 1, err
}

// SlotsHeld implements tenancy.ConcurrencyStore.
func (s *Store) SlotsHeld(ctx context.Context, tenant tenancy.ID, quota string, now time.Time) (int64, error) {
	return s.rdb.ZCount(ctx, s.key(tenant, "slots:"+quota), "("+strconv.FormatInt(now.UnixMilli(), 10), "+inf").Result()
}
