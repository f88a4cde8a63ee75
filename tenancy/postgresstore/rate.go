package postgresstore

import (
	"context"
	"time"

	"github.com/systembuilderhub/hardening/tenancy"
	"github.com/systembuilderhub/hardening/tenancy/internal/storekit"
)

// TakeRate implements tenancy.RateStore: tenancy.GCRA in
// hardening_quota_take_rate, one round trip.
func (s *Store) TakeRate(ctx context.Context, req tenancy.RateRequest) (tenancy.RateResult, error) {
	var res tenancy.RateResult
	var remaining, retry, reset int64
	err := s.scan(ctx, "take rate", `SELECT allowed, quota_limit, remaining, retry_after, reset_after FROM hardening_quota_take_rate($1, $2, $3, $4, $5, $6)`,
		[]any{string(req.Tenant), req.Quota, req.Now.UnixMicro(), req.DefaultLimit, req.Period.Microseconds(), req.Burst},
		&res.Allowed, &res.Limit, &remaining, &retry, &reset)
	if err != nil {
		return tenancy.RateResult{}, err
	}
	switch {
	case res.Limit == tenancy.Unlimited:
		res.Burst = tenancy.Unlimited
		return res, nil
	case req.Burst <= 0:
		res.Burst = res.Limit
	default:
		res.Burst = req.Burst
	}
	if res.Limit == 0 {
		res.RetryAfter = req.Period
		return res, nil
	}
	res.Remaining = remaining
	res.RetryAfter = time.Duration(retry) * time.Microsecond
	res.ResetAfter = time.Duration(reset) * time.Microsecond
	return res, nil
}

// RateUsed implements tenancy.RateStore. It only reads.
func (s *Store) RateUsed(ctx context.Context, req tenancy.RateRequest) (int64, error) {
	var tat, limit int64
	if err := s.scan(ctx, "rate used", `SELECT tat, quota_limit FROM hardening_quota_rate_state($1, $2, $3)`,
		[]any{string(req.Tenant), req.Quota, req.DefaultLimit}, &tat, &limit); err != nil {
		return 0, err
	}
	return storekit.RateUsed(tat, req.Now.UnixMicro(), limit, req.Burst, req.Period), nil
}
