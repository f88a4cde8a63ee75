// Package redisstore is a tenancy.Store on Redis (or Valkey, or Redis
// Cluster). Every decision is one Lua script, so one round trip: a
// concurrency quota is a sorted set of lease deadlines, a rate a GCRA
// timestamp computed with Redis TIME as the only clock, a budget a hash of
// open reservations beside a hash of spend per period. All keys of a
// tenant share the hash tag {t:<tenant>}, so the scripts run on Redis
// Cluster and tenants spread over its slots.
//
// Key layout under the prefix P (default "hardening:"), for quota q:
//
//	P{t:<tenant>}:limits            hash  quota name -> override
//	P{t:<tenant>}:rate:<q>          str   GCRA theoretical arrival time (Unix µs)
//	P{t:<tenant>}:slots:<q>         zset  holder -> lease end (Unix ms)
//	P{t:<tenant>}:budget:<q>:res    hash  reservation id -> "period|amount|expires ms"
//	P{t:<tenant>}:budget:<q>:spent  hash  period -> spent
//	P{t:<tenant>}:audit             list  limit changes, oldest first
//	Pquota:tenants                  zset  tenants with audit entries (index for cross-tenant queries)
//
// Data written by the fixed quotas before named quotas (keys slots,
// llm:res, llm:spent and limit fields snapshots_per_minute,
// llm_monthly_budget_micros) is moved to this layout by
// Store.UpgradeFixedQuotas.
package redisstore

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/systembuilderhub/hardening/tenancy"
)

// DefaultPrefix starts every key of the store.
const DefaultPrefix = "hardening:"

// spentTTL keeps a period's spend long enough for any report.
const spentTTL = 400 * 24 * time.Hour

// Store is a tenancy.Store on Redis.
type Store struct {
	rdb         redis.UniversalClient
	prefix      string
	requestTime bool
}

var _ tenancy.Store = (*Store)(nil)

// Option configures New.
type Option interface{ apply(*config) }

type config struct {
	prefix      string
	requestTime bool
}

type option func(*config)

func (o option) apply(c *config) { o(c) }

// WithPrefix sets the key prefix (default DefaultPrefix). It must not
// contain '{' or '}', which would break the per-tenant hash tags; New
// reports one that does.
func WithPrefix(p string) Option { return option(func(c *config) { c.prefix = p }) }

// withRequestTime makes rates use the request's Now instead of Redis TIME,
// so decisions follow the conformance suite's injected clock (tests only,
// see export_test.go); in production Redis TIME keeps every replica on one
// clock.
func withRequestTime() Option { return option(func(c *config) { c.requestTime = true }) }

// New returns a store on rdb (a *redis.Client, *redis.ClusterClient or
// *redis.Ring). A nil option is ignored.
func New(rdb redis.UniversalClient, opts ...Option) (*Store, error) {
	if rdb == nil {
		return nil, errors.New("tenancy/redisstore: nil redis client")
	}
	c := &config{prefix: DefaultPrefix}
	for _, o := range opts {
		if o != nil {
			o.apply(c)
		}
	}
	if strings.ContainsAny(c.prefix, "{}") {
		return nil, fmt.Errorf("tenancy/redisstore: WithPrefix(%q): must not contain '{' or '}'", c.prefix)
	}
	return &Store{rdb: rdb, prefix: c.prefix, requestTime: c.requestTime}, nil
}

func (s *Store) key(t tenancy.ID, name string) string {
	return s.prefix + "{t:" + string(t) + "}:" + name
}

// ints reads a script's array reply of integers (numbers or strings).
func ints(v any, err error) ([]int64, error) {
	if err != nil {
		return nil, err
	}
	arr, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("tenancy/redisstore: unexpected script reply %T", v)
	}
	out := make([]int64, len(arr))
	for i, x := range arr {
		switch x := x.(type) {
		case int64:
			out[i] = x
		case string:
			n, err := strconv.ParseInt(x, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("tenancy/redisstore: unexpected script reply %q", x)
			}
			out[i] = n
		default:
			return nil, fmt.Errorf("tenancy/redisstore: unexpected script reply %T", x)
		}
	}
	return out, nil
}
