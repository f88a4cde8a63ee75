package redisstore

import (
	"context"
	"strconv"
	"time"

	"github.com/systembuilderhub/hardening/tenancy"
)

// clockArgs returns the now of a rate script: empty (Redis TIME) unless
// the store was built WithRequestTime.
func (s *Store) clockArgs(now time.Time) (string, string) {
	if !s.requestTime {
		return "", ""
	}
	us := now.UnixMicro()
	return strconv.FormatInt(us/1_000_000, 10), strconv.FormatInt(us%1_000_000, 10)
}

// TakeRate implements tenancy.RateStore.
func (s *Store) TakeRate(ctx context.Context, req tenancy.RateRequest) (tenancy.RateResult, error) {
	sec, us := s.clockArgs(req.Now)
	r, err := ints(rateScript.Run(ctx, s.rdb, []string{s.key(req.Tenant, "rate:"+req.Quota), s.key(req.Tenant, "limits")},
		req.Quota, req.DefaultLimit, sec, us, req.Period.Microseconds(), req.Burst, tenancy.MaxTolerance).Result())
	if err != nil {
		return tenancy.RateResult{}, err
	}
	return tenancy.RateResult{Allowed: r[0] == 1, Limit: r[1], Burst: r[2], Remaining: r[3],
		RetryAfter: time.Duration(r[4]) * time.Microsecond, ResetAfter: time.Duration(r[5]) * time.Microsecond}, nil
}

// RateUsed implements tenancy.RateStore.
func (s *Store) RateUsed(ctx context.Context, req tenancy.RateRequest) (int64, error) {
	sec, us := s.clockArgs(req.Now)
	r, err := ints(rateUsedScript.Run(ctx, s.rdb, []string{s.key(req.Tenant, "rate:"+req.Quota), s.key(req.Tenant, "limits")},
		req.Quota, req.DefaultLimit, sec, us).Result())
	if err != nil {
		return 0, err
	}
	return tenancy.GCRAUsed(r[0], 0, r[1], req.Burst, req.Period), nil
}
