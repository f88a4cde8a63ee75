package tenancy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Quotas applies the per-tenant quotas on a Store: the active-preview
// semaphore, the snapshot rate and the monthly LLM budget. The tenant of
// every check is the one in the context (see WithTenant and Middleware).
//
// A check returns its result and, when the quota refuses, a *Rejection
// error; ErrNoTenant when the context has no tenant; an *UnavailableError
// when the store failed (fail closed, unless WithFailOpen names the
// resource). WriteError turns any of these into the right problem+json
// response.
type Quotas struct {
	store      Store
	c          *config
	checks     *prometheus.CounterVec
	rejections *prometheus.CounterVec
	storeErrs  *prometheus.CounterVec
}

// NewQuotas returns quotas on store. Options that apply: WithDefaults,
// WithClock, WithLogger, WithRegisterer, WithFailOpen, WithLeaseTTL,
// WithReservationTTL, WithUsageGauges.
func NewQuotas(store Store, opts ...Option) (*Quotas, error) {
	if store == nil {
		return nil, errors.New("tenancy: NewQuotas: nil Store")
	}
	c := newConfig(opts)
	if err := c.defaults.Validate(); err != nil {
		return nil, fmt.Errorf("tenancy: WithDefaults: %w", err)
	}
	if c.leaseTTL <= 0 {
		return nil, errors.New("tenancy: WithLeaseTTL: must be positive")
	}
	if c.resTTL <= 0 {
		return nil, errors.New("tenancy: WithReservationTTL: must be positive")
	}
	for _, id := range c.gauges {
		if !id.Valid() {
			return nil, fmt.Errorf("tenancy: WithUsageGauges: %w: %q", ErrInvalidID, id)
		}
	}
	q := &Quotas{store: store, c: c}
	if err := q.register(); err != nil {
		return nil, err
	}
	return q, nil
}

// Defaults returns the limits of tenants without overrides.
func (q *Quotas) Defaults() Limits { return q.c.defaults }

// Rejection is the error of a check the quota refused. It carries what the
// problem response reports.
type Rejection struct {
	Resource Resource
	// Reason is the problem's reason code: active_previews_limit_exceeded,
	// snapshot_rate_exceeded or llm_budget_exceeded.
	Reason string
	// Current is the consumption at the time of the check (for the budget:
	// spent + reserved, in micro-dollars).
	Current int64
	// Limit is the tenant's limit (for the budget: micro-dollars).
	Limit int64
	// RetryAfter is set for the snapshot rate.
	RetryAfter time.Duration
	// Rate is the full GCRA decision for the snapshot rate.
	Rate RateResult
	// Budget is the full decision for the LLM budget.
	Budget BudgetResult
}

// Error implements error.
func (r *Rejection) Error() string {
	return fmt.Sprintf("tenancy: quota %s exceeded (%d of %d)", r.Resource, r.Current, r.Limit)
}

// Reason codes of rejections.
const (
	ReasonActivePreviews = "active_previews_limit_exceeded"
	ReasonSnapshotRate   = "snapshot_rate_exceeded"
	ReasonLLMBudget      = "llm_budget_exceeded"
)

// UnavailableError reports that the quota store failed and the quota is
// fail-closed.
type UnavailableError struct {
	Resource Resource
	Err      error
}

// Error implements error.
func (e *UnavailableError) Error() string {
	return fmt.Sprintf("tenancy: quota store unavailable for %s: %v", e.Resource, e.Err)
}

// Unwrap returns the store's error.
func (e *UnavailableError) Unwrap() error { return e.Err }

// failed handles a store error: nil (allow) when the resource fails open.
func (q *Quotas) failed(ctx context.Context, res Resource, tenant ID, err error) error {
	q.storeErrs.WithLabelValues(string(res)).Inc()
	if q.c.failOpen[res] {
		q.c.log.WarnContext(ctx, "tenancy: quota store failed, allowing (fail-open)", "resource", res, "tenant", tenant, "error", err)
		return nil
	}
	q.c.log.ErrorContext(ctx, "tenancy: quota store failed, denying", "resource", res, "tenant", tenant, "error", err)
	return &UnavailableError{Resource: res, Err: err}
}

func (q *Quotas) reject(ctx context.Context, tenant ID, rej *Rejection) error {
	q.rejections.WithLabelValues(string(rej.Resource)).Inc()
	q.c.log.InfoContext(ctx, "tenancy: quota exceeded", "resource", rej.Resource, "tenant", tenant, "current", rej.Current, "limit", rej.Limit)
	return rej
}

// AcquirePreview takes an active-preview slot for previewID (or renews the
// lease of the slot it already holds). The lease lasts WithLeaseTTL; the
// holder renews it with RenewPreview and frees it with ReleasePreview. A
// full semaphore returns a *Rejection (429).
func (q *Quotas) AcquirePreview(ctx context.Context, previewID string) (SlotResult, error) {
	tenant, ok := FromContext(ctx)
	if !ok {
		return SlotResult{}, ErrNoTenant
	}
	if previewID == "" {
		return SlotResult{}, errors.New("tenancy: empty preview id")
	}
	q.checks.WithLabelValues(string(ResourceActivePreviews)).Inc()
	now := q.c.now()
	res, err := q.store.AcquireSlot(ctx, SlotRequest{Tenant: tenant, PreviewID: previewID, Now: now, Lease: q.c.leaseTTL, DefaultLimit: q.c.defaults.ActivePreviews})
	if err != nil {
		if err := q.failed(ctx, ResourceActivePreviews, tenant, err); err != nil {
			return SlotResult{}, err
		}
		return SlotResult{Held: true, ExpiresAt: now.Add(q.c.leaseTTL)}, nil
	}
	if !res.Held {
		return res, q.reject(ctx, tenant, &Rejection{Resource: ResourceActivePreviews, Reason: ReasonActivePreviews, Current: res.Current, Limit: res.Limit})
	}
	return res, nil
}

// RenewPreview extends the lease of previewID's slot. Held is false when
// the slot was released or had lapsed; the caller should then stop the
// preview or acquire again.
func (q *Quotas) RenewPreview(ctx context.Context, previewID string) (SlotResult, error) {
	tenant, ok := FromContext(ctx)
	if !ok {
		return SlotResult{}, ErrNoTenant
	}
	res, err := q.store.RenewSlot(ctx, SlotRequest{Tenant: tenant, PreviewID: previewID, Now: q.c.now(), Lease: q.c.leaseTTL})
	if err != nil {
		return SlotResult{}, &UnavailableError{Resource: ResourceActivePreviews, Err: err}
	}
	return res, nil
}

// ReleasePreview frees previewID's slot. It is idempotent: releasing a
// free slot reports false and no error.
func (q *Quotas) ReleasePreview(ctx context.Context, previewID string) (bool, error) {
	tenant, ok := FromContext(ctx)
	if !ok {
		return false, ErrNoTenant
	}
	released, err := q.store.ReleaseSlot(ctx, tenant, previewID)
	if err != nil {
		return false, &UnavailableError{Resource: ResourceActivePreviews, Err: err}
	}
	return released, nil
}

// AllowSnapshot takes one unit of the tenant's snapshot rate (GCRA: a
// burst of N, then one every minute/N). A refusal returns a *Rejection
// (429 with Retry-After). Pass the result to SetRateLimitHeaders in both
// cases.
func (q *Quotas) AllowSnapshot(ctx context.Context) (RateResult, error) {
	tenant, ok := FromContext(ctx)
	if !ok {
		return RateResult{}, ErrNoTenant
	}
	q.checks.WithLabelValues(string(ResourceSnapshots)).Inc()
	res, err := q.store.TakeRate(ctx, RateRequest{Tenant: tenant, Resource: ResourceSnapshots, Now: q.c.now(), DefaultLimit: q.c.defaults.SnapshotsPerMinute})
	if err != nil {
		if err := q.failed(ctx, ResourceSnapshots, tenant, err); err != nil {
			return RateResult{}, err
		}
		return RateResult{Allowed: true, Limit: q.c.defaults.SnapshotsPerMinute}, nil
	}
	if !res.Allowed {
		return res, q.reject(ctx, tenant, &Rejection{Resource: ResourceSnapshots, Reason: ReasonSnapshotRate, Current: res.Limit - res.Remaining, Limit: res.Limit, RetryAfter: res.RetryAfter, Rate: res})
	}
	return res, nil
}

// Reservation is money held from a tenant's monthly LLM budget until it is
// settled, cancelled or expires.
type Reservation struct {
	ID        string
	Tenant    ID
	Amount    Micros
	ExpiresAt time.Time
	// Result is the budget decision that granted it.
	Result BudgetResult
}

// ReserveLLM holds estimate from the tenant's budget for the current UTC
// month. It succeeds only when spent + reserved + estimate <= budget;
// otherwise it returns a *Rejection (402). Settle or cancel the
// reservation when the call ends; if the process dies first, the
// reservation expires after WithReservationTTL and the money returns.
func (q *Quotas) ReserveLLM(ctx context.Context, estimate Micros) (Reservation, error) {
	tenant, ok := FromContext(ctx)
	if !ok {
		return Reservation{}, ErrNoTenant
	}
	if estimate <= 0 {
		return Reservation{}, errors.New("tenancy: reservation amount must be positive")
	}
	q.checks.WithLabelValues(string(ResourceLLMBudget)).Inc()
	now := q.c.now()
	id := newReservationID()
	res, err := q.store.Reserve(ctx, ReserveRequest{Tenant: tenant, ReservationID: id, Amount: estimate, Now: now, TTL: q.c.resTTL, DefaultBudget: q.c.defaults.LLMMonthlyBudget})
	if err != nil {
		if err := q.failed(ctx, ResourceLLMBudget, tenant, err); err != nil {
			return Reservation{}, err
		}
		return Reservation{ID: id, Tenant: tenant, Amount: estimate, ExpiresAt: now.Add(q.c.resTTL)}, nil
	}
	if !res.Reserved {
		return Reservation{}, q.reject(ctx, tenant, &Rejection{Resource: ResourceLLMBudget, Reason: ReasonLLMBudget, Current: int64(res.Spent + res.Outstanding), Limit: int64(res.Budget), Budget: res})
	}
	return Reservation{ID: id, Tenant: tenant, Amount: estimate, ExpiresAt: res.ExpiresAt, Result: res}, nil
}

// SettleLLM records actual as spent and returns the rest of the
// reservation. An actual above the reservation is recorded as is (and
// logged); the budget guarantee holds when callers reserve the call's
// maximum cost. Found is false when the reservation had already ended
// (settled, cancelled or expired); nothing is recorded then.
func (q *Quotas) SettleLLM(ctx context.Context, r Reservation, actual Micros) (SettleResult, error) {
	if actual < 0 {
		return SettleResult{}, errors.New("tenancy: negative actual cost")
	}
	if actual > r.Amount {
		// Recorded as is (the ledger stays true), but the budget can now be
		// overdrawn: reserve the call's maximum cost, not an estimate.
		q.c.log.WarnContext(ctx, "tenancy: actual LLM cost above its reservation", "tenant", r.Tenant, "reservation", r.ID,
			"reserved_micros", int64(r.Amount), "actual_micros", int64(actual))
	}
	res, err := q.store.Settle(ctx, SettleRequest{Tenant: r.Tenant, ReservationID: r.ID, Actual: actual, Now: q.c.now()})
	if err != nil {
		return SettleResult{}, &UnavailableError{Resource: ResourceLLMBudget, Err: err}
	}
	if !res.Found {
		q.c.log.WarnContext(ctx, "tenancy: settling an ended reservation; cost not recorded", "tenant", r.Tenant, "reservation", r.ID, "actual_micros", int64(actual))
	}
	return res, nil
}

// CancelLLM returns the whole reservation.
func (q *Quotas) CancelLLM(ctx context.Context, r Reservation) (bool, error) {
	ok, err := q.store.Cancel(ctx, r.Tenant, r.ID)
	if err != nil {
		return false, &UnavailableError{Resource: ResourceLLMBudget, Err: err}
	}
	return ok, nil
}

// Limits returns tenant's effective limits.
func (q *Quotas) Limits(ctx context.Context, tenant ID) (Limits, error) {
	if !tenant.Valid() {
		return Limits{}, ErrInvalidID
	}
	return q.store.Limits(ctx, tenant, q.c.defaults)
}

// UpdateLimits applies patch to tenant's limits, recording one audit entry
// per patched field (old and new value, changedBy, reason, time) in the
// same transaction or script as the change, and returns the new limits.
func (q *Quotas) UpdateLimits(ctx context.Context, tenant ID, patch LimitsPatch, changedBy, reason string) (Limits, error) {
	if !tenant.Valid() {
		return Limits{}, ErrInvalidID
	}
	if err := patch.Validate(); err != nil {
		return Limits{}, err
	}
	if patch.Empty() {
		return Limits{}, errors.New("tenancy: empty limits patch")
	}
	if changedBy == "" {
		return Limits{}, errors.New("tenancy: UpdateLimits needs changedBy")
	}
	l, err := q.store.UpdateLimits(ctx, UpdateRequest{Tenant: tenant, Defaults: q.c.defaults, Patch: patch, ChangedBy: changedBy, Reason: reason, Now: q.c.now()})
	if err != nil {
		return Limits{}, err
	}
	q.c.log.InfoContext(ctx, "tenancy: quota changed", "tenant", tenant, "changed_by", changedBy, "reason", reason,
		"active_previews", l.ActivePreviews, "snapshots_per_minute", l.SnapshotsPerMinute, "llm_monthly_budget_micros", int64(l.LLMMonthlyBudget))
	return l, nil
}

// Usage returns tenant's current consumption.
func (q *Quotas) Usage(ctx context.Context, tenant ID) (Usage, error) {
	if !tenant.Valid() {
		return Usage{}, ErrInvalidID
	}
	return q.store.Usage(ctx, tenant, q.c.now(), q.c.defaults)
}

// Audit lists quota changes, oldest first.
func (q *Quotas) Audit(ctx context.Context, query AuditQuery) (AuditPage, error) {
	if query.Tenant != "" && !query.Tenant.Valid() {
		return AuditPage{}, ErrInvalidID
	}
	return q.store.Audit(ctx, query)
}

func newReservationID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
