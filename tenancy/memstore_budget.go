package tenancy

import (
	"context"
	"strconv"
	"time"

	"github.com/systembuilderhub/hardening/tenancy/internal/storekit"
)

// outstanding returns the amount held in period, dropping expired
// reservations.
func (e *memEntry) outstanding(period string, now time.Time) int64 {
	var sum int64
	for id, r := range e.reserved {
		if !r.expires.After(now) {
			delete(e.reserved, id)
			continue
		}
		if r.period == period {
			sum += r.amount
		}
	}
	return sum
}

// Reserve implements BudgetStore.
func (s *MemoryStore) Reserve(_ context.Context, req ReserveRequest) (BudgetResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entry(req.Tenant, req.Quota)
	if e.reserved == nil {
		e.reserved, e.spent = map[string]memReservation{}, map[string]int64{}
	}
	res := BudgetResult{Limit: e.limit(req.DefaultLimit), Spent: e.spent[req.Period], Outstanding: e.outstanding(req.Period, req.Now),
		Requested: req.Amount, ResetsAt: req.ResetsAt}
	if res.Limit == Unlimited || res.Spent+res.Outstanding+req.Amount <= res.Limit {
		res.ExpiresAt = req.Now.Add(req.TTL)
		e.reserved[req.ReservationID] = memReservation{period: req.Period, amount: req.Amount, expires: res.ExpiresAt}
		res.Outstanding += req.Amount
		res.Reserved = true
	}
	return res, nil
}

// Settle implements BudgetStore.
func (s *MemoryStore) Settle(_ context.Context, req SettleRequest) (SettleResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entry(req.Tenant, req.Quota)
	r, ok := e.reserved[req.ReservationID]
	delete(e.reserved, req.ReservationID)
	if !ok || !r.expires.After(req.Now) {
		return SettleResult{Spent: e.spent[req.Period]}, nil
	}
	e.spent[r.period] += req.Actual
	return SettleResult{Found: true, Spent: e.spent[r.period]}, nil
}

// Cancel implements BudgetStore.
func (s *MemoryStore) Cancel(_ context.Context, tenant ID, quota, reservationID string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entry(tenant, quota)
	_, ok := e.reserved[reservationID]
	delete(e.reserved, reservationID)
	return ok, nil
}

// BudgetUsage implements BudgetStore.
func (s *MemoryStore) BudgetUsage(_ context.Context, tenant ID, quota, period string, now time.Time) (BudgetUsage, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entry(tenant, quota)
	return BudgetUsage{Spent: e.spent[period], Reserved: e.outstanding(period, now)}, nil
}

// Limits implements LimitStore.
func (s *MemoryStore) Limits(_ context.Context, tenant ID, defaults Limits) (Limits, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.limits(tenant, defaults), nil
}

func (s *MemoryStore) limits(tenant ID, defaults Limits) Limits {
	out := make(Limits, len(defaults))
	t := s.tenants[tenant]
	for name, d := range defaults {
		out[name] = d
		if t == nil {
			continue
		}
		if e := t.find(name); e != nil {
			out[name] = e.limit(d)
		}
	}
	return out
}

// SetLimits implements LimitStore.
func (s *MemoryStore) SetLimits(_ context.Context, req SetLimitsRequest) (Limits, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	at := req.Now.UTC().Truncate(time.Millisecond)
	for _, name := range storekit.SortedNames(req.Set) {
		e := s.entry(req.Tenant, name)
		old := e.limit(req.Defaults[name])
		e.override, e.hasOverride = req.Set[name], true
		s.audit = append(s.audit, AuditEntry{Tenant: req.Tenant, Quota: name, OldValue: old, NewValue: req.Set[name],
			ChangedBy: req.ChangedBy, ChangedAt: at, Reason: req.Reason})
	}
	return s.limits(req.Tenant, req.Defaults), nil
}

// Audit implements LimitStore. The cursor is the index of the next entry.
func (s *MemoryStore) Audit(_ context.Context, q AuditQuery) (AuditPage, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	start := 0
	if q.Cursor != "" {
		n, err := strconv.Atoi(q.Cursor)
		if err != nil || n < 0 {
			return AuditPage{}, ErrBadCursor
		}
		start = n
	}
	size := storekit.PageSize(q.Limit)
	var page AuditPage
	for i := start; i < len(s.audit); i++ {
		e := s.audit[i]
		if (q.Tenant != "" && e.Tenant != q.Tenant) || e.ChangedAt.Before(q.Since) {
			continue
		}
		if len(page.Entries) == size {
			page.NextCursor = strconv.Itoa(i)
			break
		}
		page.Entries = append(page.Entries, e)
	}
	return page, nil
}
