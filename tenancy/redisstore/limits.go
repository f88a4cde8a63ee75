package redisstore

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/systembuilderhub/hardening/tenancy"

	"github.com/systembuilderhub/hardening/tenancy/internal/storekit"
)

// merge puts the overrides of the quotas named in defaults over them.
func merge(overrides map[string]string, defaults tenancy.Limits) (tenancy.Limits, error) {
	out := make(tenancy.Limits, len(defaults))
	for name, d := range defaults {
		out[name] = d
		v, ok := overrides[name]
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("tenancy/redisstore: unexpected limit %q of %s", v, name)
		}
		out[name] = n
	}
	return out, nil
}

// Limits implements tenancy.LimitStore.
func (s *Store) Limits(ctx context.Context, tenant tenancy.ID, defaults tenancy.Limits) (tenancy.Limits, error) {
	all, err := s.rdb.HGetAll(ctx, s.key(tenant, "limits")).Result()
	if err != nil {
		return nil, err
	}
	return merge(all, defaults)
}

// auditJSON is an audit entry as stored; F is the quota name.
type auditJSON struct {
	Field     string `json:"f"`
	New       int64  `json:"n"`
	ChangedBy string `json:"by"`
	ChangedAt int64  `json:"at"`
	Reason    string `json:"r"`
}

// SetLimits implements tenancy.LimitStore: the overrides and their audit
// entries are written by one script.
func (s *Store) SetLimits(ctx context.Context, req tenancy.SetLimitsRequest) (tenancy.Limits, error) {
	var args, entries []any
	for _, name := range storekit.SortedNames(req.Set) {
		args = append(args, name, req.Defaults[name], req.Set[name])
		b, err := json.Marshal(auditJSON{Field: name, New: req.Set[name], ChangedBy: req.ChangedBy, ChangedAt: req.Now.UnixMilli(), Reason: req.Reason})
		if err != nil {
			return nil, err
		}
		entries = append(entries, string(b))
	}
	// The tenant index lives outside the tenant's hash slot, so it is
	// written first, by its own command: it may list a tenant whose
	// change then failed, never miss one that has entries.
	if err := s.rdb.ZAdd(ctx, s.prefix+"quota:tenants", redis.Z{Member: string(req.Tenant)}).Err(); err != nil {
		return nil, err
	}
	v, err := setLimitsScript.Run(ctx, s.rdb, []string{s.key(req.Tenant, "limits"), s.key(req.Tenant, "audit")}, append(args, entries...)...).Result()
	if err != nil {
		return nil, err
	}
	flat, _ := v.([]any)
	overrides := make(map[string]string, len(flat)/2)
	for i := 0; i+1 < len(flat); i += 2 {
		k, _ := flat[i].(string)
		val, _ := flat[i+1].(string)
		overrides[k] = val
	}
	return merge(overrides, req.Defaults)
}

// Audit implements tenancy.LimitStore. Entries come tenant by tenant (in
// id order), each tenant's oldest first; the cursor is "<tenant>|<index>".
// A query for all tenants reads the tenant index and then each tenant's
// list: limit changes are rare admin actions, so this stays small.
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
	size := storekit.PageSize(q.Limit)
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
	return tenancy.AuditEntry{Tenant: t, Quota: a.Field, OldValue: old, NewValue: a.New, ChangedBy: a.ChangedBy,
		ChangedAt: time.UnixMilli(a.ChangedAt).UTC(), Reason: a.Reason}, nil
}
