package tenancy

import (
	"context"
	"errors"
	"fmt"
	"maps"
)

// Limits returns tenant's effective limits of every declared quota:
// overrides over defaults.
func (q *Quotas) Limits(ctx context.Context, tenant ID) (Limits, error) {
	if !tenant.Valid() {
		return nil, ErrInvalidID
	}
	return q.store.Limits(ctx, tenant, q.Defaults())
}

// SetLimits stores set as tenant's overrides, recording one audit entry
// per quota (old and new value, changedBy, reason, time) in the same
// transaction or script as the change, and returns the new effective
// limits. Every name must be declared and every value 0 to MaxLimit or
// Unlimited (ErrInvalidLimit).
func (q *Quotas) SetLimits(ctx context.Context, tenant ID, set Limits, changedBy, reason string) (Limits, error) {
	if !tenant.Valid() {
		return nil, ErrInvalidID
	}
	if len(set) == 0 {
		return nil, errors.New("tenancy: SetLimits: no limit to set")
	}
	if changedBy == "" {
		return nil, errors.New("tenancy: SetLimits needs changedBy")
	}
	for name, v := range set {
		if q.byName[name] == nil {
			return nil, fmt.Errorf("%w: %q was not declared", ErrUnknownQuota, name)
		}
		if err := checkLimit(name, v); err != nil {
			return nil, err
		}
	}
	l, err := q.store.SetLimits(ctx, SetLimitsRequest{Tenant: tenant, Defaults: q.Defaults(), Set: maps.Clone(set),
		ChangedBy: changedBy, Reason: reason, Now: q.now()})
	if err != nil {
		return nil, err
	}
	q.log.InfoContext(ctx, "tenancy: quota changed", "tenant", tenant, "changed_by", changedBy, "reason", reason, "set", set)
	return l, nil
}

// QuotaUsage is one quota's current consumption by a tenant.
type QuotaUsage struct {
	// Used is the units of a rate's burst in use, the slots of a
	// concurrency quota held, or the spend of a budget's current period.
	Used int64
	// Reserved is the amount held by a budget's open reservations.
	Reserved int64
}

// Usage is a tenant's consumption by quota name.
type Usage map[string]QuotaUsage

// Usage returns tenant's current consumption of every declared quota (one
// store read per quota).
func (q *Quotas) Usage(ctx context.Context, tenant ID) (Usage, error) {
	if !tenant.Valid() {
		return nil, ErrInvalidID
	}
	now := q.now()
	u := make(Usage, len(q.order))
	for _, s := range q.order {
		var qu QuotaUsage
		var err error
		switch s.kind {
		case KindRate:
			qu.Used, err = q.store.RateUsed(ctx, RateRequest{Tenant: tenant, Quota: s.name, Now: now, DefaultLimit: s.limit, Period: s.per, Burst: s.burst})
		case KindConcurrency:
			qu.Used, err = q.store.SlotsHeld(ctx, tenant, s.name, now)
		case KindBudget:
			var b BudgetUsage
			b, err = q.store.BudgetUsage(ctx, tenant, s.name, s.period.Key(now), now)
			qu = QuotaUsage{Used: b.Spent, Reserved: b.Reserved}
		}
		if err != nil {
			return nil, err
		}
		u[s.name] = qu
	}
	return u, nil
}

// Audit lists limit changes, oldest first.
func (q *Quotas) Audit(ctx context.Context, query AuditQuery) (AuditPage, error) {
	if query.Tenant != "" && !query.Tenant.Valid() {
		return AuditPage{}, ErrInvalidID
	}
	return q.store.Audit(ctx, query)
}
