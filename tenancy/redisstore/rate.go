package redisstore

import (
	"context"
	"fmt"
	"time"

	"github.com/systembuilderhub/hardening/tenancy"

	"github.com/systembuilderhub/hardening/tenancy/internal/storekit"
)

// rateArgs appends to args the now of a rate script: nothing (Redis TIME)
// unless the store was built withRequestTime (tests).
func (s *Store) rateArgs(now time.Time, args ...any) []any {
	if !s.requestTime {
		return args
	}
	us := now.UnixMicro()
	return append(args, us/1_000_000, us%1_000_000)
}

// TakeRate implements tenancy.RateStore.
func (s *Store) TakeRate(ctx context.Context, req tenancy.RateRequest) (tenancy.RateResult, error) {
	r, err := ints(rateScript.Run(ctx, s.rdb, s.rateKeys(req),
		s.rateArgs(req.Now, req.Quota, req.DefaultLimit, req.Period.Microseconds(), req.Burst)...).Result())
	if err != nil {
		return tenancy.RateResult{}, err
	}
	if len(r) != 4 {
		return tenancy.RateResult{}, fmt.Errorf("tenancy/redisstore: rate script replied %d values, want 4", len(r))
	}
	res := tenancy.RateResult{Allowed: r[0] == 1, Limit: r[1], Burst: req.Burst, ResetAfter: time.Duration(r[3]) * time.Microsecond}
	switch {
	case res.Limit == tenancy.Unlimited:
		res.Burst = tenancy.Unlimited
	case res.Burst <= 0:
		res.Burst = res.Limit
	}
	if res.Allowed {
		res.Remaining = r[2]
	} else {
		res.RetryAfter = time.Duration(r[2]) * time.Microsecond
	}
	return res, nil
}

// RateUsed implements tenancy.RateStore.
func (s *Store) RateUsed(ctx context.Context, req tenancy.RateRequest) (int64, error) {
	r, err := ints(rateUsedScript.Run(ctx, s.rdb, s.rateKeys(req), s.rateArgs(req.Now, req.Quota, req.DefaultLimit)...).Result())
	if err != nil {
		return 0, err
	}
	if len(r) != 2 {
		return 0, fmt.Errorf("tenancy/redisstore: rate script replied %d values, want 2", len(r))
	}
	return storekit.RateUsed(r[0], 0, r[1], req.Burst, req.Period), nil
}

// rateKeys returns the keys of a rate script: the tat and the limits hash.
func (s *Store) rateKeys(req tenancy.RateRequest) []string {
	return []string{s.key(req.Tenant, "rate:"+req.Quota), s.key(req.Tenant, "limits")}
}
