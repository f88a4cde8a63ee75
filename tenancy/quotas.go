package tenancy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/systembuilderhub/hardening"
)

// Quotas applies named per-tenant quotas on a Store. Each quota is
// declared once, at construction, with Rate, Concurrency or Budget; calls
// name it, and a name that was not declared (or was declared as another
// kind) is an error wrapping ErrUnknownQuota, never a silent allow. The
// tenant of every check is the one in the context (see WithTenant and
// Middleware).
//
// A check returns its result and, when the quota refuses, a *Rejection
// error; ErrNoTenant when the context has no tenant; an *UnavailableError
// when the store failed (fail closed, unless the quota was declared
// WithFailOpen). Each of these is a hardening.Error, so
// hardening.WriteError (or WriteError) turns it into the right
// problem+json response. A Quotas is safe for concurrent use.
type Quotas struct {
	store    Store
	mem      *MemoryStore // store, when it is one: Allow calls it directly
	byName   map[string]*quotaState
	order    []*quotaState
	defaults Limits
	now      func() time.Time
	log      *slog.Logger
	reg      prometheus.Registerer
	gauges   []ID
	onError  hardening.ErrorHandler
}

// quotaState is a declared quota with its reason and metric children.
type quotaState struct {
	Quota
	reasonCode                    string
	gcra                          gcraParams // of a rate at its default limit
	checks, rejections, storeErrs prometheus.Counter
}

// NewQuotas returns the quotas declared among opts (Rate, Concurrency,
// Budget) on store. The other options are WithClock, WithLogger,
// WithRegisterer, WithUsageGauges and WithErrorHandler. It reports a
// malformed or duplicated declaration, and a limit that is negative (other
// than Unlimited) or above MaxLimit.
func NewQuotas(store Store, opts ...QuotasOption) (*Quotas, error) {
	if store == nil {
		return nil, errors.New("tenancy: NewQuotas: nil Store")
	}
	c := &quotasConfig{}
	for _, o := range opts {
		if o != nil {
			o.applyQuotas(c)
		}
	}
	if len(c.quotas) == 0 {
		return nil, errors.New("tenancy: NewQuotas: no quota declared (tenancy.Rate, tenancy.Concurrency, tenancy.Budget)")
	}
	if c.nowSet && c.now == nil {
		return nil, errors.New("tenancy: WithClock: nil clock")
	}
	q := &Quotas{store: store, byName: map[string]*quotaState{}, defaults: Limits{}, now: c.now, log: discardIfNil(c.log),
		reg: c.reg, gauges: c.gauges, onError: c.onError}
	if q.now == nil {
		q.now = time.Now
	}
	q.mem, _ = store.(*MemoryStore)
	if q.onError == nil {
		q.onError = hardening.WriteError
	}
	for _, d := range c.quotas {
		if err := d.validate(); err != nil {
			return nil, err
		}
		if q.byName[d.name] != nil {
			return nil, fmt.Errorf("tenancy: quota %q declared twice", d.name)
		}
		s := &quotaState{Quota: d, reasonCode: d.Reason(), gcra: newGCRAParams(d.limit, d.burst, d.per)}
		q.byName[d.name] = s
		q.order = append(q.order, s)
		q.defaults[d.name] = d.limit
	}
	for _, id := range c.gauges {
		if !id.Valid() {
			return nil, fmt.Errorf("tenancy: WithUsageGauges: %w: %q", ErrInvalidID, id)
		}
	}
	if err := q.register(); err != nil {
		return nil, err
	}
	return q, nil
}

// Quota returns the declaration of name.
func (q *Quotas) Quota(name string) (Quota, bool) {
	s, ok := q.byName[name]
	if !ok {
		return Quota{}, false
	}
	return s.Quota, true
}

// Defaults returns the declared default limits by quota name.
func (q *Quotas) Defaults() Limits {
	out := make(Limits, len(q.defaults))
	for k, v := range q.defaults {
		out[k] = v
	}
	return out
}

// scanQuotas is the number of declared quotas up to which find scans the
// declarations rather than hashing the name: comparing a few short names
// is cheaper than a map lookup.
const scanQuotas = 8

// find returns the declared quota name, or nil.
func (q *Quotas) find(name string) *quotaState {
	if len(q.order) > scanQuotas {
		return q.byName[name]
	}
	for _, s := range q.order {
		if s.name == name {
			return s
		}
	}
	return nil
}

// lookup returns the declared quota name of kind k.
func (q *Quotas) lookup(name string, k Kind) (*quotaState, error) {
	s := q.find(name)
	if s == nil {
		return nil, fmt.Errorf("%w: %q was not declared", ErrUnknownQuota, name)
	}
	if s.kind != k {
		return nil, fmt.Errorf("%w: %q is a %s quota, not a %s quota", ErrUnknownQuota, name, s.kind, k)
	}
	return s, nil
}

// target returns the declared quota name of kind k and the context's
// tenant.
func (q *Quotas) target(ctx context.Context, name string, k Kind) (*quotaState, ID, error) {
	s, err := q.lookup(name, k)
	if err != nil {
		return nil, "", err
	}
	tenant, ok := FromContext(ctx)
	if !ok {
		return nil, "", ErrNoTenant
	}
	return s, tenant, nil
}

// failed handles a store error of a check: nil (allow) when the quota
// fails open.
func (q *Quotas) failed(ctx context.Context, s *quotaState, tenant ID, err error) error {
	s.storeErrs.Inc()
	if s.failOpen {
		q.log.WarnContext(ctx, "tenancy: quota store failed, allowing (fail-open)", "quota", s.name, "tenant", tenant, "error", err)
		return nil
	}
	q.log.ErrorContext(ctx, "tenancy: quota store failed, denying", "quota", s.name, "tenant", tenant, "error", err)
	return &UnavailableError{Quota: s.name, Err: err}
}

func (q *Quotas) reject(ctx context.Context, s *quotaState, tenant ID, rej *Rejection) error {
	s.rejections.Inc()
	q.log.InfoContext(ctx, "tenancy: quota exceeded", "quota", s.name, "tenant", tenant, "current", rej.Current, "limit", rej.Limit)
	return rej
}

// Allow takes one unit of the rate name for the context's tenant. A
// refusal returns the decision and a *Rejection (429 with Retry-After).
// Pass the result to SetRateLimitHeaders in both cases.
func (q *Quotas) Allow(ctx context.Context, name string) (RateResult, error) {
	s, tenant, err := q.target(ctx, name, KindRate)
	if err != nil {
		return RateResult{}, err
	}
	s.checks.Inc()
	var res RateResult
	if q.mem != nil {
		q.mem.takeRate(tenant, name, q.now().UnixMicro(), &s.gcra, &res)
	} else {
		res, err = q.store.TakeRate(ctx, RateRequest{Tenant: tenant, Quota: name, Now: q.now(), DefaultLimit: s.limit, Period: s.per, Burst: s.burst})
	}
	res.Quota, res.Period = name, s.per
	if err != nil {
		if err := q.failed(ctx, s, tenant, err); err != nil {
			return RateResult{Quota: name, Period: s.per}, err
		}
		return RateResult{Allowed: true, Limit: s.limit, Quota: name, Period: s.per}, nil
	}
	if !res.Allowed {
		return res, q.reject(ctx, s, tenant, rateRejection(s, res))
	}
	return res, nil
}
