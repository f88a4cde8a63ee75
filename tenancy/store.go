package tenancy

import (
	"context"
	"time"
)

// Store keeps quota state: one value implementing the interface of every
// kind, which NewQuotas takes. Every method is one atomic decision in the
// backend (one transaction in SQL, one script in Redis). A denial is a
// value in the result; an error means the backend failed.
//
// Requests carry the quota name and the default limit that applies when
// the tenant has no override, so a decision reads the override and decides
// in the same round trip. Implementations pass the conformance suites of
// tenancy/storetest (RunRate, RunConcurrency, RunBudget, RunLimits, or Run
// for all).
type Store interface {
	RateStore
	ConcurrencyStore
	BudgetStore
	LimitStore
}

// RateStore keeps the GCRA state of rate quotas.
type RateStore interface {
	// TakeRate admits or refuses one unit of the rate (see GCRA).
	TakeRate(ctx context.Context, req RateRequest) (RateResult, error)
	// RateUsed reports how many units of the burst are in use (GCRAUsed).
	RateUsed(ctx context.Context, req RateRequest) (int64, error)
}

// ConcurrencyStore keeps the leased slots of concurrency quotas.
type ConcurrencyStore interface {
	// AcquireSlot takes (or renews) the slot of req.Holder. Acquiring a
	// held slot again renews its lease and counts once. Slots whose lease
	// ended at or before req.Now are freed first.
	AcquireSlot(ctx context.Context, req SlotRequest) (SlotResult, error)
	// RenewSlot extends a held slot's lease; Held is false when the slot
	// was released or its lease had already ended.
	RenewSlot(ctx context.Context, req SlotRequest) (SlotResult, error)
	// ReleaseSlot frees a slot; releasing a free slot is not an error and
	// reports false.
	ReleaseSlot(ctx context.Context, tenant ID, quota, holder string) (bool, error)
	// SlotsHeld reports how many slots have a lease ending after now.
	SlotsHeld(ctx context.Context, tenant ID, quota string, now time.Time) (int64, error)
}

// BudgetStore keeps the spend and the open reservations of budget quotas.
type BudgetStore interface {
	// Reserve holds req.Amount of the period's budget when spent +
	// reserved + amount <= limit. Expired reservations are returned
	// first.
	Reserve(ctx context.Context, req ReserveRequest) (BudgetResult, error)
	// Settle ends a reservation, recording actual as spent in the
	// reservation's period and returning the rest. Found is false (and
	// nothing is recorded) when the reservation was settled, cancelled or
	// expired already.
	Settle(ctx context.Context, req SettleRequest) (SettleResult, error)
	// Cancel ends a reservation without spending; false when it no longer
	// exists.
	Cancel(ctx context.Context, tenant ID, quota, reservationID string) (bool, error)
	// BudgetUsage reports the spend of the period and the amount held by
	// its unexpired reservations.
	BudgetUsage(ctx context.Context, tenant ID, quota, period string, now time.Time) (BudgetUsage, error)
}

// LimitStore keeps per-tenant overrides and their audit log.
type LimitStore interface {
	// Limits returns the tenant's effective limits of the quotas named in
	// defaults: the override where there is one, else the default.
	Limits(ctx context.Context, tenant ID, defaults Limits) (Limits, error)
	// SetLimits stores req.Set as overrides and writes one audit entry per
	// quota in the same transaction or script. It returns the new
	// effective limits of the quotas named in req.Defaults.
	SetLimits(ctx context.Context, req SetLimitsRequest) (Limits, error)
	// Audit lists limit changes, oldest first, a page at a time.
	Audit(ctx context.Context, q AuditQuery) (AuditPage, error)
}

// RateRequest asks for one unit of a rate of Limit per Period.
type RateRequest struct {
	Tenant ID
	Quota  string
	// Now is the decision time (tenancy/redisstore uses Redis TIME
	// instead, so every replica shares one clock).
	Now time.Time
	// DefaultLimit is N per Period when the tenant has no override.
	DefaultLimit int64
	// Period is the rate's window.
	Period time.Duration
	// Burst is the burst; 0 means the tenant's limit.
	Burst int64
}

// RateResult is a GCRA decision.
type RateResult struct {
	Allowed bool
	// Limit is N of "N per Period"; Unlimited when the quota is lifted.
	Limit int64
	// Burst is how many units may be taken at once.
	Burst int64
	// Remaining is how many more units could be taken right now.
	Remaining int64
	// RetryAfter is, when refused, how long until one unit is available.
	RetryAfter time.Duration
	// ResetAfter is how long until the full burst is available again.
	ResetAfter time.Duration
	// Quota and Period name the rate; Quotas sets them (stores leave them
	// empty), and SetRateLimitHeaders reads them.
	Quota  string
	Period time.Duration
}

// SlotRequest asks for a slot of a concurrency quota.
type SlotRequest struct {
	Tenant ID
	Quota  string
	// Holder keys the slot: the same holder acquiring again counts once.
	Holder string
	// Now is the decision time; leases ending at or before it are over.
	Now time.Time
	// Lease is how long the slot stays held from Now without renewal.
	Lease time.Duration
	// DefaultLimit applies when the tenant has no override (AcquireSlot).
	DefaultLimit int64
}

// SlotResult is the outcome of AcquireSlot or RenewSlot.
type SlotResult struct {
	// Held reports whether the holder holds a slot after the call.
	Held bool
	// Current is the number of slots held after the call.
	Current int64
	// Limit is the tenant's effective limit (AcquireSlot only).
	Limit int64
	// ExpiresAt is the end of the lease when Held.
	ExpiresAt time.Time
}

// ReserveRequest asks to hold part of a budget.
type ReserveRequest struct {
	Tenant ID
	Quota  string
	// ReservationID is unique per tenant and quota (Quotas uses 128
	// random bits in hex).
	ReservationID string
	// Amount is what to hold, 1 to MaxLimit.
	Amount int64
	// Period is the ledger key of the budget period (Period.Key);
	// ResetsAt is its end, reported in the result.
	Period   string
	ResetsAt time.Time
	// Now is the reservation's start; TTL how long it holds its amount if
	// not settled.
	Now time.Time
	TTL time.Duration
	// DefaultLimit applies when the tenant has no override.
	DefaultLimit int64
}

// BudgetResult is the outcome of Reserve.
type BudgetResult struct {
	Reserved bool
	// Limit is the tenant's budget for the period; Unlimited when lifted.
	Limit int64
	// Spent is the period's settled spend.
	Spent int64
	// Outstanding is the amount held by open reservations of the period,
	// including this one when Reserved.
	Outstanding int64
	// Requested is the amount asked for.
	Requested int64
	// ResetsAt is the start of the next period.
	ResetsAt time.Time
	// ExpiresAt is when the reservation lapses if not settled.
	ExpiresAt time.Time
}

// SettleRequest ends a reservation with what was really used.
type SettleRequest struct {
	Tenant        ID
	Quota         string
	ReservationID string
	// Actual is recorded in the reservation's period.
	Actual int64
	// Now decides whether the reservation has expired; Period is the key
	// of Now's period, whose spend is reported when the reservation is
	// gone.
	Now    time.Time
	Period string
}

// SettleResult is the outcome of Settle.
type SettleResult struct {
	Found bool
	// Spent is the settled spend of the reservation's period after the
	// call (of the current period when not Found).
	Spent int64
}

// BudgetUsage is a budget's consumption in one period.
type BudgetUsage struct {
	Spent    int64
	Reserved int64
}

// SetLimitsRequest changes a tenant's overrides.
type SetLimitsRequest struct {
	Tenant ID
	// Defaults are the defaults of every declared quota: the old value of
	// quotas without an override, and the names the result covers.
	Defaults Limits
	// Set holds the new override of each quota to change.
	Set Limits
	// ChangedBy, Reason and Now are recorded in the audit entries.
	ChangedBy string
	Reason    string
	Now       time.Time
}
