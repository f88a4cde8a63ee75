package tenancy

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"
)

// Resource names a quota. The names are the values of the "resource"
// label of the quota metrics.
type Resource string

// The quotas of the package.
const (
	// ResourceActivePreviews is the per-tenant counting semaphore of
	// running previews.
	ResourceActivePreviews Resource = "active_previews"
	// ResourceSnapshots is the per-tenant snapshot rate (GCRA).
	ResourceSnapshots Resource = "snapshots"
	// ResourceLLMBudget is the per-tenant monthly LLM spend.
	ResourceLLMBudget Resource = "llm_budget"
)

// Defaults of the quotas (see ConfigFromEnv for the environment).
const (
	DefaultActivePreviews     = 5
	DefaultSnapshotsPerMinute = 10
	DefaultLLMMonthlyBudget   = Micros(100_000_000) // 100.0 USD
	// DefaultLeaseTTL is how long an active-preview slot lives without
	// renewal.
	DefaultLeaseTTL = 2 * time.Minute
	// DefaultReservationTTL is how long an unsettled budget reservation
	// holds its money.
	DefaultReservationTTL = 10 * time.Minute
	// RatePeriod is the window of the snapshot rate: N per RatePeriod.
	RatePeriod = time.Minute
)

// Micros is an amount of money in integer micro-dollars (1 USD =
// 1,000,000). Budgets are held as integers so that concurrent reservations
// add up exactly.
type Micros int64

// MicrosPerUSD is the number of micro-dollars in one US dollar.
const MicrosPerUSD = 1_000_000

// MicrosFromUSD converts dollars to micro-dollars, rounding to the nearest
// micro-dollar. It rejects NaN, infinities, negative amounts and amounts
// beyond what an int64 holds.
func MicrosFromUSD(usd float64) (Micros, error) {
	if math.IsNaN(usd) || math.IsInf(usd, 0) || usd < 0 {
		return 0, fmt.Errorf("tenancy: invalid USD amount %v", usd)
	}
	m := math.Round(usd * MicrosPerUSD)
	if m >= math.MaxInt64/2 {
		return 0, fmt.Errorf("tenancy: USD amount %v too large", usd)
	}
	return Micros(m), nil
}

// USD returns m in dollars.
func (m Micros) USD() float64 { return float64(m) / MicrosPerUSD }

// Limits are a tenant's effective quota limits.
type Limits struct {
	// ActivePreviews is the number of previews that may hold a slot at once.
	ActivePreviews int64
	// SnapshotsPerMinute is N of the snapshot rate: a burst of N, then one
	// every minute/N.
	SnapshotsPerMinute int64
	// LLMMonthlyBudget is the spend allowed per calendar month (UTC).
	LLMMonthlyBudget Micros
}

// DefaultLimits returns the package defaults (5 previews, 10 snapshots per
// minute, 100 USD a month).
func DefaultLimits() Limits {
	return Limits{ActivePreviews: DefaultActivePreviews, SnapshotsPerMinute: DefaultSnapshotsPerMinute, LLMMonthlyBudget: DefaultLLMMonthlyBudget}
}

// MaxLimit is the largest limit a quota takes, as a default or as a
// per-tenant override: 2^53-1 (9,007,199,254,740,991; for a budget in
// micro-dollars, about 9 billion USD). Every store represents it exactly,
// including Redis, whose Lua scripts compute in double-precision floats;
// larger values are refused with ErrInvalidLimit before they reach a
// store.
const MaxLimit = 1<<53 - 1

// ErrInvalidLimit is returned for a negative limit or one above MaxLimit.
var ErrInvalidLimit = errors.New("tenancy: invalid limit")

// checkLimit reports a limit outside [0, MaxLimit], naming the field.
func checkLimit(field string, v int64) error {
	switch {
	case v < 0:
		return fmt.Errorf("%w: %s is negative", ErrInvalidLimit, field)
	case v > MaxLimit:
		return fmt.Errorf("%w: %s = %d is above the maximum %d", ErrInvalidLimit, field, v, int64(MaxLimit))
	}
	return nil
}

// Validate reports a negative limit or one above MaxLimit
// (ErrInvalidLimit).
func (l Limits) Validate() error {
	return errors.Join(checkLimit(FieldActivePreviews, l.ActivePreviews),
		checkLimit(FieldSnapshotsPerMinute, l.SnapshotsPerMinute),
		checkLimit(FieldLLMMonthlyBudget, int64(l.LLMMonthlyBudget)))
}

// LimitsPatch is a partial change of a tenant's limits; nil fields stay.
type LimitsPatch struct {
	// ActivePreviews, SnapshotsPerMinute and LLMMonthlyBudget, when
	// non-nil, become the tenant's override for that field.
	ActivePreviews     *int64
	SnapshotsPerMinute *int64
	LLMMonthlyBudget   *Micros
}

// Empty reports whether the patch changes nothing.
func (p LimitsPatch) Empty() bool {
	return p.ActivePreviews == nil && p.SnapshotsPerMinute == nil && p.LLMMonthlyBudget == nil
}

// Validate reports a negative value or one above MaxLimit
// (ErrInvalidLimit).
func (p LimitsPatch) Validate() error {
	var errs []error
	if p.ActivePreviews != nil {
		errs = append(errs, checkLimit(FieldActivePreviews, *p.ActivePreviews))
	}
	if p.SnapshotsPerMinute != nil {
		errs = append(errs, checkLimit(FieldSnapshotsPerMinute, *p.SnapshotsPerMinute))
	}
	if p.LLMMonthlyBudget != nil {
		errs = append(errs, checkLimit(FieldLLMMonthlyBudget, int64(*p.LLMMonthlyBudget)))
	}
	return errors.Join(errs...)
}

// Audit field names: the Field of an AuditEntry. The budget is recorded
// in micro-dollars.
const (
	FieldActivePreviews     = "active_previews"
	FieldSnapshotsPerMinute = "snapshots_per_minute"
	FieldLLMMonthlyBudget   = "llm_monthly_budget_micros"
)

// Store keeps quota state. Every method is one atomic decision in the
// backend (one transaction in SQL, one script in Redis). A denial is a
// value in the result; an error means the backend failed. Implementations
// must pass storetest.Run.
//
// Requests carry the defaults that apply when the tenant has no override,
// so a decision reads the override and decides in the same round trip.
type Store interface {
	// AcquireSlot takes (or renews) the slot of req.PreviewID. Acquiring a
	// held preview id again renews its lease and counts once. Slots whose
	// lease ended before req.Now are freed first.
	AcquireSlot(ctx context.Context, req SlotRequest) (SlotResult, error)
	// RenewSlot extends a held slot's lease; Held is false when the slot
	// was released or its lease had already ended.
	RenewSlot(ctx context.Context, req SlotRequest) (SlotResult, error)
	// ReleaseSlot frees a slot; releasing a free slot is not an error and
	// reports false.
	ReleaseSlot(ctx context.Context, tenant ID, previewID string) (bool, error)

	// TakeRate admits or refuses one unit of a GCRA rate.
	TakeRate(ctx context.Context, req RateRequest) (RateResult, error)

	// Reserve holds req.Amount of the month's budget when spent + reserved
	// + amount <= budget. Expired reservations are returned first.
	Reserve(ctx context.Context, req ReserveRequest) (BudgetResult, error)
	// Settle ends a reservation, recording actual as spent in the
	// reservation's month and returning the rest. Found is false (and
	// nothing is recorded) when the reservation was settled, cancelled or
	// expired already.
	Settle(ctx context.Context, req SettleRequest) (SettleResult, error)
	// Cancel ends a reservation without spending; false when it no longer
	// exists.
	Cancel(ctx context.Context, tenant ID, reservationID string) (bool, error)

	// Limits returns the tenant's effective limits: overrides over
	// defaults.
	Limits(ctx context.Context, tenant ID, defaults Limits) (Limits, error)
	// UpdateLimits stores the patch as overrides and writes one audit
	// entry per patched field in the same transaction or script. It
	// returns the new effective limits.
	UpdateLimits(ctx context.Context, req UpdateRequest) (Limits, error)
	// Usage reports the tenant's current consumption.
	Usage(ctx context.Context, tenant ID, now time.Time, defaults Limits) (Usage, error)
	// Audit lists quota changes, oldest first, a page at a time.
	Audit(ctx context.Context, q AuditQuery) (AuditPage, error)
}

// SlotRequest asks for an active-preview slot.
type SlotRequest struct {
	Tenant ID
	// PreviewID keys the slot: the same id held again counts once.
	PreviewID string
	// Now is the decision time; leases ending at or before it are over.
	Now time.Time
	// Lease is how long the slot stays held from Now without renewal.
	Lease time.Duration
	// DefaultLimit applies when the tenant has no override (AcquireSlot).
	DefaultLimit int64
}

// SlotResult is the outcome of AcquireSlot or RenewSlot.
type SlotResult struct {
	// Held reports whether the preview holds a slot after the call.
	Held bool
	// Current is the number of slots held after the call.
	Current int64
	// Limit is the tenant's effective limit (AcquireSlot only).
	Limit int64
	// ExpiresAt is the end of the lease when Held.
	ExpiresAt time.Time
}

// RateRequest asks for one unit of a rate of Limit per RatePeriod.
type RateRequest struct {
	Tenant   ID
	Resource Resource
	// Now is the decision time (Redis stores use Redis TIME instead
	// unless built WithRequestTime).
	Now time.Time
	// DefaultLimit is N per RatePeriod when the tenant has no override.
	DefaultLimit int64
}

// RateResult is a GCRA decision.
type RateResult struct {
	Allowed bool
	// Limit is N of "N per minute" (also the burst).
	Limit int64
	// Remaining is how many more units could be taken right now.
	Remaining int64
	// RetryAfter is, when refused, how long until one unit is available.
	RetryAfter time.Duration
	// ResetAfter is how long until the full burst is available again.
	ResetAfter time.Duration
}

// ReserveRequest asks to hold part of the month's LLM budget.
type ReserveRequest struct {
	Tenant ID
	// ReservationID is unique per tenant (Quotas uses 128 random bits).
	ReservationID string
	// Amount is the money to hold, > 0.
	Amount Micros
	// Now picks the budget month and the reservation's start.
	Now time.Time
	// TTL is how long the reservation holds its money if not settled.
	TTL time.Duration
	// DefaultBudget applies when the tenant has no override.
	DefaultBudget Micros
}

// BudgetResult is the outcome of Reserve.
type BudgetResult struct {
	Reserved bool
	// Budget is the tenant's monthly budget.
	Budget Micros
	// Spent is the month's settled spend.
	Spent Micros
	// Outstanding is the money held by open reservations, including this
	// one when Reserved.
	Outstanding Micros
	// Requested is the amount asked for.
	Requested Micros
	// ResetsAt is the start of the next calendar month (UTC).
	ResetsAt time.Time
	// ExpiresAt is when the reservation lapses if not settled.
	ExpiresAt time.Time
}

// SettleRequest ends a reservation with the real cost.
type SettleRequest struct {
	Tenant        ID
	ReservationID string
	// Actual is the real cost, recorded in the reservation's month.
	Actual Micros
	// Now decides whether the reservation has expired.
	Now time.Time
}

// SettleResult is the outcome of Settle.
type SettleResult struct {
	Found bool
	// Spent is the month's settled spend after the call.
	Spent Micros
}

// UpdateRequest changes a tenant's limits.
type UpdateRequest struct {
	Tenant ID
	// Defaults give the old value of fields without an override.
	Defaults Limits
	// Patch holds the fields to set.
	Patch LimitsPatch
	// ChangedBy, Reason and Now are recorded in the audit entries.
	ChangedBy string
	Reason    string
	Now       time.Time
}

// Usage is a tenant's current consumption.
type Usage struct {
	// ActivePreviews is the number of slots held.
	ActivePreviews int64
	// SnapshotsLastMinute is the part of the snapshot burst in use
	// (GCRA: ceil((tat-now)/interval)).
	SnapshotsLastMinute int64
	// LLMSpent is the month's settled spend.
	LLMSpent Micros
	// LLMReserved is the money held by open reservations this month.
	LLMReserved Micros
}

// AuditEntry is one recorded quota change.
type AuditEntry struct {
	Tenant ID
	// Field is FieldActivePreviews, FieldSnapshotsPerMinute or
	// FieldLLMMonthlyBudget.
	Field string
	// OldValue is the effective value before the change (the default when
	// there was no override); NewValue the value set. Budgets are in
	// micro-dollars.
	OldValue  int64
	NewValue  int64
	ChangedBy string
	// ChangedAt has millisecond precision.
	ChangedAt time.Time
	Reason    string
}

// AuditQuery filters and pages the audit log.
type AuditQuery struct {
	// Tenant restricts to one tenant; empty means all.
	Tenant ID
	// Since keeps entries changed at or after it; zero means all.
	Since time.Time
	// Limit is the page size; <= 0 means 100, capped at 1000.
	Limit int
	// Cursor is the NextCursor of the previous page; empty starts.
	Cursor string
}

// AuditPage is one page of the audit log.
type AuditPage struct {
	Entries []AuditEntry
	// NextCursor continues after this page; empty at the end.
	NextCursor string
}

// ErrBadCursor is returned by Store.Audit for a cursor it did not issue.
var ErrBadCursor = errors.New("tenancy: malformed audit cursor")

// PageSize normalizes AuditQuery.Limit.
func PageSize(limit int) int {
	switch {
	case limit <= 0:
		return 100
	case limit > 1000:
		return 1000
	}
	return limit
}

// Month returns the UTC calendar month of t as "YYYY-MM", the key of the
// budget ledger.
func Month(t time.Time) string { return t.UTC().Format("2006-01") }

// MonthEnd returns the start of the UTC calendar month after t's.
func MonthEnd(t time.Time) time.Time {
	u := t.UTC()
	return time.Date(u.Year(), u.Month()+1, 1, 0, 0, 0, 0, time.UTC)
}

// GCRA is the generic cell rate algorithm every store applies (the Redis
// script mirrors it): limit units per RatePeriod with a burst of limit.
// tat is the stored theoretical arrival time in Unix microseconds (0 when
// none), now the current time in Unix microseconds. It returns the new tat
// to store (unchanged when refused) and the decision.
//
// With emission interval T = RatePeriod/limit (at least 1µs): the request is admitted
// when max(tat, now) + T - limit*T <= now; Remaining is how many more
// intervals fit; ResetAfter is the time until tat falls back to now.
func GCRA(tat, now, limit int64) (int64, RateResult) {
	res := RateResult{Limit: limit}
	if limit <= 0 {
		res.RetryAfter = RatePeriod
		return tat, res
	}
	interval := max(RatePeriod.Microseconds()/limit, 1)
	if tat < now {
		tat = now
	}
	newTat := tat + interval
	allowAt := newTat - limit*interval
	diff := now - allowAt
	if diff < 0 {
		res.RetryAfter = time.Duration(-diff) * time.Microsecond
		res.ResetAfter = time.Duration(tat-now) * time.Microsecond
		return tat, res
	}
	res.Allowed = true
	res.Remaining = diff / interval
	res.ResetAfter = time.Duration(newTat-now) * time.Microsecond
	return newTat, res
}

// GCRAUsed returns how many units of a limit-per-RatePeriod rate are
// consumed at now given the stored tat: ceil((tat-now)/T), at most limit.
func GCRAUsed(tat, now, limit int64) int64 {
	if limit <= 0 || tat <= now {
		return 0
	}
	interval := max(RatePeriod.Microseconds()/limit, 1)
	used := (tat - now + interval - 1) / interval
	return min(used, limit)
}
