package tenancy

import (
	"context"
	"errors"
)

// maxHolderLen bounds a slot holder id.
const maxHolderLen = 256

func checkHolder(holder string) error {
	if holder == "" || len(holder) > maxHolderLen {
		return errors.New("tenancy: slot holder id must be 1 to 256 bytes")
	}
	return nil
}

// Acquire takes a slot of the concurrency quota name for holder (or renews
// the lease of the slot holder already has) in the context's tenant. The
// lease lasts the quota's lease time; the holder renews it with Renew and
// frees it with Release. A full semaphore returns a *Rejection (429).
func (q *Quotas) Acquire(ctx context.Context, name, holder string) (SlotResult, error) {
	s, tenant, err := q.target(ctx, name, KindConcurrency)
	if err != nil {
		return SlotResult{}, err
	}
	if err := checkHolder(holder); err != nil {
		return SlotResult{}, err
	}
	s.checks.Inc()
	now := q.now()
	res, err := q.store.AcquireSlot(ctx, SlotRequest{Tenant: tenant, Quota: name, Holder: holder, Now: now, Lease: s.lease, DefaultLimit: s.limit})
	if err != nil {
		if err := q.failed(ctx, s, tenant, err); err != nil {
			return SlotResult{}, err
		}
		return SlotResult{Held: true, Limit: s.limit, ExpiresAt: now.Add(s.lease)}, nil
	}
	if !res.Held {
		return res, q.reject(ctx, s, tenant, slotRejection(s, res))
	}
	return res, nil
}

// Renew extends the lease of holder's slot. Held is false when the slot
// was released or had lapsed; the holder should then stop its work or
// acquire again.
func (q *Quotas) Renew(ctx context.Context, name, holder string) (SlotResult, error) {
	s, tenant, err := q.target(ctx, name, KindConcurrency)
	if err != nil {
		return SlotResult{}, err
	}
	res, err := q.store.RenewSlot(ctx, SlotRequest{Tenant: tenant, Quota: name, Holder: holder, Now: q.now(), Lease: s.lease})
	if err != nil {
		return SlotResult{}, &UnavailableError{Quota: name, Err: err}
	}
	return res, nil
}

// Release frees holder's slot. It is idempotent: releasing a free slot
// reports false and no error.
func (q *Quotas) Release(ctx context.Context, name, holder string) (bool, error) {
	_, tenant, err := q.target(ctx, name, KindConcurrency)
	if err != nil {
		return false, err
	}
	released, err := q.store.ReleaseSlot(ctx, tenant, name, holder)
	if err != nil {
		return false, &UnavailableError{Quota: name, Err: err}
	}
	return released, nil
}
