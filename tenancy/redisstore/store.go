// Package redisstore is a tenancy.Store on Redis (or Valkey, or Redis
// Cluster). Every decision is one Lua script, so one round trip: the
// active-preview semaphore is a sorted set of lease deadlines, the snapshot
// rate a GCRA timestamp computed with Redis TIME as the only clock, the
// budget a hash of open reservations beside a hash of monthly spend. All
// keys of a tenant share the hash tag {t:<tenant>}, so the scripts run on
// Redis Cluster and tenants spread over its slots.
//
// Key layout under the prefix P (default "hardening:"):
//
//	P{t:<tenant>}:limits       hash  overrides
//	P{t:<tenant>}:slots        zset  preview id -> lease end (Unix ms)
//	P{t:<tenant>}:rate:<res>   str   GCRA theoretical arrival time (Unix µs)
//	P{t:<tenant>}:llm:res      hash  reservation id -> "month|amount|expires ms"
//	P{t:<tenant>}:llm:spent    hash  YYYY-MM -> spent micro-dollars
//	P{t:<tenant>}:audit        list  quota changes, oldest first
//	Pquota:tenants             zset  tenants with audit entries (index for cross-tenant queries)
package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/systembuilderhub/hardening/tenancy"
)

// DefaultPrefix starts every key of the store.
const DefaultPrefix = "hardening:"

// spentTTL keeps a month's spend long enough for any report.
const spentTTL = 400 * 24 * time.Hour

// Store is a tenancy.Store on Redis.
type Store struct {
	rdb         redis.UniversalClient
	prefix      string
	requestTime bool
}

var _ tenancy.Store = (*Store)(nil)

// Option configures New.
type Option func(*Store)

// WithPrefix sets the key prefix (default DefaultPrefix). It must not
// contain '{' or '}', which would break the per-tenant hash tags.
func WithPrefix(p string) Option { return func(s *Store) { s.prefix = p } }

// WithRequestTime makes the snapshot rate use the request's Now instead of
// Redis TIME. Use it where decisions must follow an injected clock (the
// conformance suite); in production Redis TIME keeps every replica on one
// clock.
func WithRequestTime() Option { return func(s *Store) { s.requestTime = true } }

// New returns a store on rdb (a *redis.Client, *redis.ClusterClient or
// *redis.Ring).
func New(rdb redis.UniversalClient, opts ...Option) (*Store, error) {
	if rdb == nil {
		return nil, errors.New("tenancy/redisstore: nil redis client")
	}
	s := &Store{rdb: rdb, prefix: DefaultPrefix}
	for _, o := range opts {
		o(s)
	}
	if strings.ContainsAny(s.prefix, "{}") {
		return nil, fmt.Errorf("tenancy/redisstore: WithPrefix(%q): must not contain '{' or '}'", s.prefix)
	}
	return s, nil
}

func (s *Store) key(t tenancy.ID, name string) string {
	return s.prefix + "{t:" + string(t) + "}:" + name
}

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

// AcquireSlot implements tenancy.Store.
func (s *Store) AcquireSlot(ctx context.Context, req tenancy.SlotRequest) (tenancy.SlotResult, error) {
	exp := req.Now.Add(req.Lease).UnixMilli()
	r, err := ints(acquireScript.Run(ctx, s.rdb, []string{s.key(req.Tenant, "slots"), s.key(req.Tenant, "limits")},
		req.Now.UnixMilli(), exp, req.PreviewID, req.DefaultLimit).Result())
	if err != nil {
		return tenancy.SlotResult{}, err
	}
	res := tenancy.SlotResult{Held: r[0] == 1, Current: r[1], Limit: r[2]}
	if res.Held {
		res.ExpiresAt = time.UnixMilli(exp)
	}
	return res, nil
}

// RenewSlot implements tenancy.Store.
func (s *Store) RenewSlot(ctx context.Context, req tenancy.SlotRequest) (tenancy.SlotResult, error) {
	exp := req.Now.Add(req.Lease).UnixMilli()
	r, err := ints(renewScript.Run(ctx, s.rdb, []string{s.key(req.Tenant, "slots")}, req.Now.UnixMilli(), exp, req.PreviewID).Result())
	if err != nil {
		return tenancy.SlotResult{}, err
	}
	res := tenancy.SlotResult{Held: r[0] == 1, Current: r[1]}
	if res.Held {
		res.ExpiresAt = time.UnixMilli(exp)
	}
	return res, nil
}

// ReleaseSlot implements tenancy.Store.
func (s *Store) ReleaseSlot(ctx context.Context, tenant tenancy.ID, previewID string) (bool, error) {
	n, err := s.rdb.ZRem(ctx, s.key(tenant, "slots"), previewID).Result()
	return n == 1, err
}

var rateField = map[tenancy.Resource]string{tenancy.ResourceSnapshots: "snapshots_per_minute"}

// TakeRate implements tenancy.Store.
func (s *Store) TakeRate(ctx context.Context, req tenancy.RateRequest) (tenancy.RateResult, error) {
	field, ok := rateField[req.Resource]
	if !ok {
		return tenancy.RateResult{}, fmt.Errorf("tenancy/redisstore: no rate for resource %q", req.Resource)
	}
	now := ""
	if s.requestTime {
		now = strconv.FormatInt(req.Now.UnixMicro(), 10)
	}
	r, err := ints(rateScript.Run(ctx, s.rdb, []string{s.key(req.Tenant, "rate:"+string(req.Resource)), s.key(req.Tenant, "limits")},
		field, req.DefaultLimit, now, tenancy.RatePeriod.Microseconds()).Result())
	if err != nil {
		return tenancy.RateResult{}, err
	}
	return tenancy.RateResult{Allowed: r[0] == 1, Limit: r[1], Remaining: r[2],
		RetryAfter: time.Duration(r[3]) * time.Microsecond, ResetAfter: time.Duration(r[4]) * time.Microsecond}, nil
}

// Reserve implements tenancy.Store.
func (s *Store) Reserve(ctx context.Context, req tenancy.ReserveRequest) (tenancy.BudgetResult, error) {
	if strings.Contains(req.ReservationID, "|") {
		return tenancy.BudgetResult{}, errors.New("tenancy/redisstore: reservation id must not contain '|'")
	}
	exp := req.Now.Add(req.TTL).UnixMilli()
	month := tenancy.Month(req.Now)
	r, err := ints(reserveScript.Run(ctx, s.rdb, []string{s.key(req.Tenant, "llm:res"), s.key(req.Tenant, "llm:spent"), s.key(req.Tenant, "limits")},
		req.ReservationID, int64(req.Amount), req.Now.UnixMilli(), exp, month, int64(req.DefaultBudget)).Result())
	if err != nil {
		return tenancy.BudgetResult{}, err
	}
	res := tenancy.BudgetResult{Reserved: r[0] == 1, Budget: tenancy.Micros(r[1]), Spent: tenancy.Micros(r[2]), Outstanding: tenancy.Micros(r[3]),
		Requested: req.Amount, ResetsAt: tenancy.MonthEnd(req.Now)}
	if res.Reserved {
		res.ExpiresAt = time.UnixMilli(exp)
	}
	return res, nil
}

// Settle implements tenancy.Store.
func (s *Store) Settle(ctx context.Context, req tenancy.SettleRequest) (tenancy.SettleResult, error) {
	r, err := ints(settleScript.Run(ctx, s.rdb, []string{s.key(req.Tenant, "llm:res"), s.key(req.Tenant, "llm:spent")},
		req.ReservationID, int64(req.Actual), req.Now.UnixMilli(), tenancy.Month(req.Now), spentTTL.Milliseconds()).Result())
	if err != nil {
		return tenancy.SettleResult{}, err
	}
	return tenancy.SettleResult{Found: r[0] == 1, Spent: tenancy.Micros(r[1])}, nil
}

// Cancel implements tenancy.Store.
func (s *Store) Cancel(ctx context.Context, tenant tenancy.ID, reservationID string) (bool, error) {
	n, err := s.rdb.HDel(ctx, s.key(tenant, "llm:res"), reservationID).Result()
	return n == 1, err
}

var limitFields = []string{"active_previews", "snapshots_per_minute", "llm_monthly_budget_micros"}

func merge(vals []any, d tenancy.Limits) (tenancy.Limits, error) {
	dst := []*int64{&d.ActivePreviews, &d.SnapshotsPerMinute, (*int64)(&d.LLMMonthlyBudget)}
	for i, v := range vals {
		if i >= len(dst) || v == nil {
			continue
		}
		str, ok := v.(string)
		if !ok {
			return tenancy.Limits{}, fmt.Errorf("tenancy/redisstore: unexpected limit %T", v)
		}
		n, err := strconv.ParseInt(str, 10, 64)
		if err != nil {
			return tenancy.Limits{}, fmt.Errorf("tenancy/redisstore: unexpected limit %q", str)
		}
		*dst[i] = n
	}
	return d, nil
}

// Limits implements tenancy.Store.
func (s *Store) Limits(ctx context.Context, tenant tenancy.ID, defaults tenancy.Limits) (tenancy.Limits, error) {
	vals, err := s.rdb.HMGet(ctx, s.key(tenant, "limits"), limitFields...).Result()
	if err != nil {
		return tenancy.Limits{}, err
	}
	return merge(vals, defaults)
}

type auditJSON struct {
	Field     string `json:"f"`
	New       int64  `json:"n"`
	ChangedBy string `json:"by"`
	ChangedAt int64  `json:"at"`
	Reason    string `json:"r"`
}

// UpdateLimits implements tenancy.Store: the overrides and their audit
// entries are written by one script.
func (s *Store) UpdateLimits(ctx context.Context, req tenancy.UpdateRequest) (tenancy.Limits, error) {
	d := req.Defaults
	args := []any{d.ActivePreviews, d.SnapshotsPerMinute, int64(d.LLMMonthlyBudget)}
	var budget *int64
	if req.Patch.LLMMonthlyBudget != nil {
		b := int64(*req.Patch.LLMMonthlyBudget)
		budget = &b
	}
	patch := []*int64{req.Patch.ActivePreviews, req.Patch.SnapshotsPerMinute, budget}
	var entries []any
	for i, p := range patch {
		if p == nil {
			args = append(args, "")
			entries = append(entries, "")
			continue
		}
		args = append(args, *p)
		b, err := json.Marshal(auditJSON{Field: limitFields[i], New: *p, ChangedBy: req.ChangedBy, ChangedAt: req.Now.UnixMilli(), Reason: req.Reason})
		if err != nil {
			return tenancy.Limits{}, err
		}
		entries = append(entries, string(b))
	}
	args = append(args, entries...)
	// The tenant index lives outside the tenant's hash slot, so it is
	// written first, by its own command: it may list a tenant whose
	// change then failed, never miss one that has entries.
	if err := s.rdb.ZAdd(ctx, s.prefix+"quota:tenants", redis.Z{Member: string(req.Tenant)}).Err(); err != nil {
		return tenancy.Limits{}, err
	}
	v, err := updateScript.Run(ctx, s.rdb, []string{s.key(req.Tenant, "limits"), s.key(req.Tenant, "audit")}, args...).Result()
	if err != nil {
		return tenancy.Limits{}, err
	}
	vals, _ := v.([]any)
	return merge(vals, d)
}

// Usage implements tenancy.Store (one script).
func (s *Store) Usage(ctx context.Context, tenant tenancy.ID, now time.Time, defaults tenancy.Limits) (tenancy.Usage, error) {
	nowUS := ""
	if s.requestTime {
		nowUS = strconv.FormatInt(now.UnixMicro(), 10)
	}
	r, err := ints(usageScript.Run(ctx, s.rdb, []string{s.key(tenant, "slots"), s.key(tenant, "rate:"+string(tenancy.ResourceSnapshots)),
		s.key(tenant, "limits"), s.key(tenant, "llm:spent"), s.key(tenant, "llm:res")},
		now.UnixMilli(), nowUS, tenancy.Month(now), defaults.SnapshotsPerMinute).Result())
	if err != nil {
		return tenancy.Usage{}, err
	}
	return tenancy.Usage{ActivePreviews: r[0], SnapshotsLastMinute: tenancy.GCRAUsed(r[1], r[2], r[3]),
		LLMSpent: tenancy.Micros(r[4]), LLMReserved: tenancy.Micros(r[5])}, nil
}

// Audit implements tenancy.Store. Entries come tenant by tenant (in id
// order), each tenant's oldest first; the cursor is "<tenant>|<index>".
// A query for all tenants reads the tenant index and then each tenant's
// list: quota changes are rare admin actions, so this stays small.
func (s *Store) Audit(ctx context.Context, q tenancy.AuditQuery) (tenancy.AuditPage, error) {
	startTenant, startIdx := "", int64(0)
	if q.Cursor != "" {
		t, idx, ok := strings.Cut(q.Cursor, "|")
		n, err := strconv.ParseInt(idx, 10, 64)
		if !ok || err != nil || n < 0 || !tenancy.ID(t).Valid() {
			return tenancy.AuditPage{}, tenancy.ErrBadCursor
		}
		startTenant, startIdx = t, n
	}
	var tenants []string
	if q.Tenant != "" {
		tenants = []string{string(q.Tenant)}
	} else {
		var err error
		if tenants, err = s.rdb.ZRange(ctx, s.prefix+"quota:tenants", 0, -1).Result(); err != nil {
			return tenancy.AuditPage{}, err
		}
		sort.Strings(tenants)
	}
	size := tenancy.PageSize(q.Limit)
	const chunk = 256
	var page tenancy.AuditPage
	for _, t := range tenants {
		if t < startTenant {
			continue
		}
		idx := int64(0)
		if t == startTenant {
			idx = startIdx
		}
		for {
			items, err := s.rdb.LRange(ctx, s.key(tenancy.ID(t), "audit"), idx, idx+chunk-1).Result()
			if err != nil {
				return tenancy.AuditPage{}, err
			}
			for i, it := range items {
				e, err := parseAudit(tenancy.ID(t), it)
				if err != nil {
					return tenancy.AuditPage{}, err
				}
				if e.ChangedAt.Before(q.Since) {
					continue
				}
				if len(page.Entries) == size {
					page.NextCursor = t + "|" + strconv.FormatInt(idx+int64(i), 10)
					return page, nil
				}
				page.Entries = append(page.Entries, e)
			}
			if len(items) < chunk {
				break
			}
			idx += chunk
		}
	}
	return page, nil
}

func parseAudit(t tenancy.ID, item string) (tenancy.AuditEntry, error) {
	oldStr, js, ok := strings.Cut(item, "|")
	old, err := strconv.ParseInt(oldStr, 10, 64)
	var a auditJSON
	if !ok || err != nil || json.Unmarshal([]byte(js), &a) != nil {
		return tenancy.AuditEntry{}, fmt.Errorf("tenancy/redisstore: malformed audit entry of %s", t)
	}
	field := a.Field
	if field == "llm_monthly_budget_micros" {
		field = tenancy.FieldLLMMonthlyBudget
	}
	return tenancy.AuditEntry{Tenant: t, Field: field, OldValue: old, NewValue: a.New, ChangedBy: a.ChangedBy,
		ChangedAt: time.UnixMilli(a.ChangedAt).UTC(), Reason: a.Reason}, nil
}
