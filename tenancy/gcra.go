package tenancy

import (
	"math/bits"
	"time"

	"github.com/systembuilderhub/hardening/tenancy/internal/storekit"
)

// rateTolerance returns burst × interval, saturated at storekit.MaxTolerance (MaxLimit µs, about 285
// years), so that every span the algorithm computes is an integer below
// 2^53, which the Redis scripts, computing in doubles, hold exactly.
func rateTolerance(burst, interval int64) int64 {
	hi, lo := bits.Mul64(uint64(burst), uint64(interval))
	if hi != 0 || lo > storekit.MaxTolerance {
		return storekit.MaxTolerance
	}
	return int64(lo)
}

// GCRA is the generic cell rate algorithm every store applies (the Redis
// script mirrors it): limit units per period with a burst of burst units
// (burst <= 0 means limit). tat is the stored theoretical arrival time in
// Unix microseconds (0 when none), now the current time in Unix
// microseconds. It returns the new tat to store (unchanged when refused)
// and the decision; Quota and Period of the result are left for the
// caller.
//
// With emission interval T = period/limit (in µs, at least 1) and
// tolerance τ = burst × T (capped at MaxLimit µs, about 285 years): the
// unit is admitted when max(tat, now) + T - τ <= now.
// Remaining is how many more intervals fit; ResetAfter is the time until
// tat falls back to now. A limit of 0 admits nothing (RetryAfter is the
// period); Unlimited admits everything and keeps tat.
func GCRA(tat, now, limit, burst int64, period time.Duration) (int64, RateResult) {
	p := newGCRAParams(limit, burst, period)
	var res RateResult
	return p.take(tat, now, &res), res
}

// gcraParams are what GCRA derives from limit, burst and period before
// looking at the time (the divisions), so that Quotas can derive them once
// per declared rate.
type gcraParams struct {
	limit, burst int64 // burst: the effective burst
	burstArg     int64 // burst as given: <= 0 means the limit
	period       time.Duration
	interval     int64 // T, µs
	tol          int64 // τ, µs
}

// newGCRAParams derives the parameters of limit units per period with a
// burst of burst units (burst <= 0 means limit).
func newGCRAParams(limit, burst int64, period time.Duration) gcraParams {
	p := gcraParams{limit: limit, burst: burst, burstArg: burst, period: period}
	if limit == Unlimited {
		p.burst = Unlimited
		return p
	}
	if burst <= 0 {
		p.burst = limit
	}
	if limit > 0 {
		p.interval = storekit.RateInterval(limit, period)
		p.tol = rateTolerance(p.burst, p.interval)
	}
	return p
}

// take is GCRA with p's parameters, writing the decision to res (which
// the caller zeroed), so that it is not copied on its way out.
func (p *gcraParams) take(tat, now int64, res *RateResult) int64 {
	res.Limit, res.Burst = p.limit, p.burst
	if p.limit == Unlimited {
		res.Allowed = true
		return tat
	}
	if p.limit <= 0 {
		res.RetryAfter = p.period
		return tat
	}
	tat = max(tat, now)
	newTat := tat + p.interval
	diff := now - (newTat - p.tol)
	if diff < 0 {
		res.RetryAfter = time.Duration(-diff) * time.Microsecond
		res.ResetAfter = time.Duration(tat-now) * time.Microsecond
		return tat
	}
	res.Allowed = true
	res.Remaining = diff / p.interval
	res.ResetAfter = time.Duration(newTat-now) * time.Microsecond
	return newTat
}
