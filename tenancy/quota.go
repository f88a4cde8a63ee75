package tenancy

import (
	"errors"
	"fmt"
	"time"
)

// Kind is the kind of a quota.
type Kind int

// The kinds of quota.
const (
	// KindRate is a GCRA rate: N units per period with a burst.
	KindRate Kind = iota + 1
	// KindConcurrency is a counting semaphore of leased slots.
	KindConcurrency
	// KindBudget is an amount per calendar period, reserved then settled.
	KindBudget
)

// String returns "rate", "concurrency" or "budget".
func (k Kind) String() string {
	switch k {
	case KindRate:
		return "rate"
	case KindConcurrency:
		return "concurrency"
	case KindBudget:
		return "budget"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Limit values.
const (
	// Unlimited, as a default or a per-tenant override, lifts the quota:
	// every check is allowed (and still counted).
	Unlimited int64 = -1
	// MaxLimit is the largest limit a quota takes, as a default or as an
	// override: 2^53-1 (9,007,199,254,740,991). Every store represents it
	// exactly, including Redis, whose Lua scripts compute in doubles.
	// Larger values, and negative ones other than Unlimited, are refused
	// with ErrInvalidLimit before they reach a store.
	MaxLimit = 1<<53 - 1
)

// Limits are quota limits by quota name: a service's defaults or a
// tenant's effective limits. A value is 0 (nothing allowed) to MaxLimit, or
// Unlimited.
type Limits map[string]int64

var (
	// ErrInvalidLimit is returned for a limit that is negative (other than
	// Unlimited) or above MaxLimit.
	ErrInvalidLimit = errors.New("tenancy: invalid limit")
	// ErrUnknownQuota is returned when a call names a quota that was not
	// declared, or was declared as another kind.
	ErrUnknownQuota = errors.New("tenancy: unknown quota")
)

// checkLimit reports a limit outside [0, MaxLimit] other than Unlimited.
func checkLimit(name string, v int64) error {
	switch {
	case v == Unlimited:
		return nil
	case v < 0:
		return fmt.Errorf("%w: %s = %d is negative (use tenancy.Unlimited for no limit)", ErrInvalidLimit, name, v)
	case v > MaxLimit:
		return fmt.Errorf("%w: %s = %d is above the maximum %d", ErrInvalidLimit, name, v, int64(MaxLimit))
	}
	return nil
}

// Quota declares one named quota for NewQuotas: build it with Rate,
// Concurrency or Budget. Its limit is the default of tenants without an
// override.
type Quota struct {
	name     string
	kind     Kind
	limit    int64
	reason   string
	failOpen bool
	// rate
	per      time.Duration
	burst    int64
	burstSet bool
	// concurrency
	lease time.Duration
	// budget
	period   Period
	resTTL   time.Duration
	currency string
	perUnit  int64
}

// Name returns the quota's name.
func (q Quota) Name() string { return q.name }

// Kind returns the quota's kind.
func (q Quota) Kind() Kind { return q.kind }

// Limit returns the quota's default limit.
func (q Quota) Limit() int64 { return q.limit }

// Reason returns the reason code of the quota's refusals:
// <name>_rate_exceeded, <name>_limit_exceeded or <name>_budget_exceeded
// unless WithReason changed it.
func (q Quota) Reason() string {
	if q.reason != "" {
		return q.reason
	}
	switch q.kind {
	case KindRate:
		return q.name + "_rate_exceeded"
	case KindConcurrency:
		return q.name + "_limit_exceeded"
	}
	return q.name + "_budget_exceeded"
}

func (q Quota) applyQuotas(c *quotasConfig) { c.quotas = append(c.quotas, q) }

// DefaultReservationTTL is how long an unsettled budget reservation holds
// its amount unless WithReservationTTL says otherwise.
const DefaultReservationTTL = 10 * time.Minute

// Rate declares a GCRA rate of limit units per period for each tenant,
// with a burst of limit units (WithBurst changes it): a tenant may take the
// burst at once, then one unit every period/limit. Quotas.Allow takes one
// unit; Quotas.RateLimit is the HTTP middleware. A refusal answers 429
// with Retry-After and the RateLimit header fields.
func Rate(name string, limit int64, per time.Duration, opts ...RateOption) Quota {
	q := Quota{name: name, kind: KindRate, limit: limit, per: per}
	for _, o := range opts {
		if o != nil {
			o.applyRate(&q)
		}
	}
	return q
}

// Concurrency declares a counting semaphore of limit slots per tenant.
// Quotas.Acquire takes the slot of a holder id (taking it again renews it
// and counts once); the slot lasts lease unless the holder renews it
// (Quotas.Renew), so the slot of a crashed holder frees itself.
// Quotas.ConcurrencyLimit is the HTTP middleware. A refusal answers 429.
func Concurrency(name string, limit int64, lease time.Duration, opts ...ConcurrencyOption) Quota {
	q := Quota{name: name, kind: KindConcurrency, limit: limit, lease: lease}
	for _, o := range opts {
		if o != nil {
			o.applyConcurrency(&q)
		}
	}
	return q
}

// Budget declares an amount of limit units per tenant and calendar period
// (UTC). Quotas.Reserve holds an amount when spent + reserved + amount <=
// limit; Quotas.Settle records what was really used and returns the rest;
// Quotas.Cancel returns it all; an unsettled reservation expires after
// WithReservationTTL (default DefaultReservationTTL). Amounts are
// integers: hold money in Micros. A refusal answers 402.
func Budget(name string, limit int64, period Period, opts ...BudgetOption) Quota {
	q := Quota{name: name, kind: KindBudget, limit: limit, period: period, resTTL: DefaultReservationTTL}
	for _, o := range opts {
		if o != nil {
			o.applyBudget(&q)
		}
	}
	return q
}

// Bounds of declarations, so every store computes them exactly.
const (
	maxNameLen  = 48
	maxRatePer  = 366 * 24 * time.Hour
	maxDuration = 366 * 24 * time.Hour
)

// validName reports whether s is a quota name: 1 to 48 bytes of [a-z0-9_],
// starting with a letter. Names are metric label values, Redis key parts
// and RateLimit policy names.
func validName(s string) bool {
	if s == "" || len(s) > maxNameLen || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := range len(s) {
		c := s[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
			return false
		}
	}
	return true
}

// validate reports a declaration NewQuotas cannot use.
func (q Quota) validate() error {
	if !validName(q.name) {
		return fmt.Errorf("tenancy: quota name %q: want 1 to %d bytes of [a-z0-9_] starting with a letter", q.name, maxNameLen)
	}
	if err := checkLimit(q.name, q.limit); err != nil {
		return err
	}
	if q.reason != "" && !validName(q.reason) {
		return fmt.Errorf("tenancy: quota %s: reason %q: want [a-z0-9_] starting with a letter", q.name, q.reason)
	}
	switch q.kind {
	case KindRate:
		if q.per < time.Millisecond || q.per > maxRatePer {
			return fmt.Errorf("tenancy: rate %s: period %v: want 1ms to %v", q.name, q.per, maxRatePer)
		}
		if q.burstSet && (q.burst < 1 || q.burst > MaxLimit) {
			return fmt.Errorf("%w: rate %s: burst %d: want 1 to %d", ErrInvalidLimit, q.name, q.burst, int64(MaxLimit))
		}
	case KindConcurrency:
		if q.lease < time.Millisecond || q.lease > maxDuration {
			return fmt.Errorf("tenancy: concurrency %s: lease %v: want 1ms to %v", q.name, q.lease, maxDuration)
		}
	case KindBudget:
		if q.period != Monthly && q.period != Daily {
			return fmt.Errorf("tenancy: budget %s: period must be tenancy.Monthly or tenancy.Daily", q.name)
		}
		if q.resTTL < time.Millisecond || q.resTTL > maxDuration {
			return fmt.Errorf("tenancy: budget %s: reservation TTL %v: want 1ms to %v", q.name, q.resTTL, maxDuration)
		}
		if q.currency != "" && q.perUnit <= 0 {
			return fmt.Errorf("tenancy: budget %s: WithCurrency needs a positive number of units per %s", q.name, q.currency)
		}
	default:
		return fmt.Errorf("tenancy: quota %q: declare it with tenancy.Rate, tenancy.Concurrency or tenancy.Budget", q.name)
	}
	return nil
}
