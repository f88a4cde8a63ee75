package tenancy

import (
	"context"
	"strconv"
	"sync"
	"time"
)

// MemoryStore is a Store in process memory, for tests and single-process
// services. State is lost on restart. The zero value is not usable; use
// NewMemoryStore.
type MemoryStore struct {
	mu      sync.Mutex
	tenants map[ID]*memTenant
	audit   []AuditEntry
}

type memTenant struct {
	active   *int64
	rate     *int64
	budget   *Micros
	slots    map[string]time.Time      // preview id -> lease end
	tats     map[Resource]int64        // Unix µs
	spent    map[string]Micros         // month -> spent
	reserved map[string]memReservation // id -> reservation
}

type memReservation struct {
	month   string
	amount  Micros
	expires time.Time
}

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore returns an empty memory store.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{tenants: map[ID]*memTenant{}}
}

func (s *MemoryStore) tenant(id ID) *memTenant {
	t := s.tenants[id]
	if t == nil {
		t = &memTenant{slots: map[string]time.Time{}, tats: map[Resource]int64{}, spent: map[string]Micros{}, reserved: map[string]memReservation{}}
		s.tenants[id] = t
	}
	return t
}

func (t *memTenant) limits(d Limits) Limits {
	if t.active != nil {
		d.ActivePreviews = *t.active
	}
	if t.rate != nil {
		d.SnapshotsPerMinute = *t.rate
	}
	if t.budget != nil {
		d.LLMMonthlyBudget = *t.budget
	}
	return d
}

func (t *memTenant) purgeSlots(now time.Time) {
	for id, exp := range t.slots {
		if !exp.After(now) {
			delete(t.slots, id)
		}
	}
}

// outstanding returns the money held in month, dropping expired reservations.
func (t *memTenant) outstanding(month string, now time.Time) Micros {
	var sum Micros
	for id, r := range t.reserved {
		if !r.expires.After(now) {
			delete(t.reserved, id)
			continue
		}
		if r.month == month {
			sum += r.amount
		}
	}
	return sum
}

// AcquireSlot implements Store.
func (s *MemoryStore) AcquireSlot(_ context.Context, req SlotRequest) (SlotResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tenant(req.Tenant)
	t.purgeSlots(req.Now)
	limit := t.limits(Limits{ActivePreviews: req.DefaultLimit}).ActivePreviews
	res := SlotResult{Limit: limit}
	if _, held := t.slots[req.PreviewID]; held || int64(len(t.slots)) < limit {
		res.ExpiresAt = req.Now.Add(req.Lease)
		t.slots[req.PreviewID] = res.ExpiresAt
		res.Held = true
	}
	res.Current = int64(len(t.slots))
	return res, nil
}

// RenewSlot implements Store.
func (s *MemoryStore) RenewSlot(_ context.Context, req SlotRequest) (SlotResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tenant(req.Tenant)
	t.purgeSlots(req.Now)
	var res SlotResult
	if _, held := t.slots[req.PreviewID]; held {
		res.ExpiresAt = req.Now.Add(req.Lease)
		t.slots[req.PreviewID] = res.ExpiresAt
		res.Held = true
	}
	res.Current = int64(len(t.slots))
	return res, nil
}

// ReleaseSlot implements Store.
func (s *MemoryStore) ReleaseSlot(_ context.Context, tenant ID, previewID string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tenant(tenant)
	_, held := t.slots[previewID]
	delete(t.slots, previewID)
	return held, nil
}

// TakeRate implements Store.
func (s *MemoryStore) TakeRate(_ context.Context, req RateRequest) (RateResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tenant(req.Tenant)
	limit := t.limits(Limits{SnapshotsPerMinute: req.DefaultLimit}).SnapshotsPerMinute
	tat, res := GCRA(t.tats[req.Resource], req.Now.UnixMicro(), limit)
	t.tats[req.Resource] = tat
	return res, nil
}

// Reserve implements Store.
func (s *MemoryStore) Reserve(_ context.Context, req ReserveRequest) (BudgetResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tenant(req.Tenant)
	month := Month(req.Now)
	res := BudgetResult{
		Budget:      t.limits(Limits{LLMMonthlyBudget: req.DefaultBudget}).LLMMonthlyBudget,
		Spent:       t.spent[month],
		Outstanding: t.outstanding(month, req.Now),
		Requested:   req.Amount,
		ResetsAt:    MonthEnd(req.Now),
	}
	if res.Spent+res.Outstanding+req.Amount <= res.Budget {
		res.ExpiresAt = req.Now.Add(req.TTL)
		t.reserved[req.ReservationID] = memReservation{month: month, amount: req.Amount, expires: res.ExpiresAt}
		res.Outstanding += req.Amount
		res.Reserved = true
	}
	return res, nil
}

// Settle implements Store.
func (s *MemoryStore) Settle(_ context.Context, req SettleRequest) (SettleResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tenant(req.Tenant)
	r, ok := t.reserved[req.ReservationID]
	if !ok || !r.expires.After(req.Now) {
		delete(t.reserved, req.ReservationID)
		return SettleResult{Spent: t.spent[Month(req.Now)]}, nil
	}
	delete(t.reserved, req.ReservationID)
	t.spent[r.month] += req.Actual
	return SettleResult{Found: true, Spent: t.spent[r.month]}, nil
}

// Cancel implements Store.
func (s *MemoryStore) Cancel(_ context.Context, tenant ID, reservationID string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tenant(tenant)
	_, ok := t.reserved[reservationID]
	delete(t.reserved, reservationID)
	return ok, nil
}

// Limits implements Store.
func (s *MemoryStore) Limits(_ context.Context, tenant ID, defaults Limits) (Limits, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tenant(tenant).limits(defaults), nil
}

// UpdateLimits implements Store.
func (s *MemoryStore) UpdateLimits(_ context.Context, req UpdateRequest) (Limits, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tenant(req.Tenant)
	old := t.limits(req.Defaults)
	rec := func(field string, o, n int64) {
		s.audit = append(s.audit, AuditEntry{Tenant: req.Tenant, Field: field, OldValue: o, NewValue: n, ChangedBy: req.ChangedBy, ChangedAt: req.Now.UTC().Truncate(time.Millisecond), Reason: req.Reason})
	}
	if p := req.Patch.ActivePreviews; p != nil {
		v := *p
		t.active = &v
		rec(FieldActivePreviews, old.ActivePreviews, v)
	}
	if p := req.Patch.SnapshotsPerMinute; p != nil {
		v := *p
		t.rate = &v
		rec(FieldSnapshotsPerMinute, old.SnapshotsPerMinute, v)
	}
	if p := req.Patch.LLMMonthlyBudget; p != nil {
		v := *p
		t.budget = &v
		rec(FieldLLMMonthlyBudget, int64(old.LLMMonthlyBudget), int64(v))
	}
	return t.limits(req.Defaults), nil
}

// Usage implements Store.
func (s *MemoryStore) Usage(_ context.Context, tenant ID, now time.Time, defaults Limits) (Usage, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tenant(tenant)
	t.purgeSlots(now)
	month := Month(now)
	return Usage{
		ActivePreviews:      int64(len(t.slots)),
		SnapshotsLastMinute: GCRAUsed(t.tats[ResourceSnapshots], now.UnixMicro(), t.limits(defaults).SnapshotsPerMinute),
		LLMSpent:            t.spent[month],
		LLMReserved:         t.outstanding(month, now),
	}, nil
}

// Audit implements Store. The cursor is the index of the next entry.
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
	size := PageSize(q.Limit)
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
