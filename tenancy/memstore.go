package tenancy

import (
	"context"
	"sync"
	"time"

	"github.com/systembuilderhub/hardening/tenancy/internal/storekit"
)

// MemoryStore is a Store in process memory, for tests and single-process
// services. State is lost on restart. The zero value is not usable; use
// NewMemoryStore.
type MemoryStore struct {
	mu      sync.Mutex
	tenants map[ID]*memTenant
	audit   []AuditEntry
}

// memTenant holds a tenant's quotas: a short list, scanned (a service
// declares a handful of quotas; this is cheaper than a second map).
type memTenant struct {
	quotas []memNamed
}

type memNamed struct {
	name  string
	entry *memEntry
}

// memEntry is the state of one quota of one tenant.
type memEntry struct {
	override    int64
	hasOverride bool
	tat         int64                     // rate: Unix µs
	slots       map[string]time.Time      // concurrency: holder -> lease end
	spent       map[string]int64          // budget: period -> spent
	reserved    map[string]memReservation // budget: id -> reservation
}

type memReservation struct {
	period  string
	amount  int64
	expires time.Time
}

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore returns an empty memory store.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{tenants: map[ID]*memTenant{}}
}

// entry returns the state of quota of tenant, creating it.
func (s *MemoryStore) entry(tenant ID, quota string) *memEntry {
	t := s.tenants[tenant]
	if t == nil {
		t = &memTenant{}
		s.tenants[tenant] = t
	}
	if e := t.find(quota); e != nil {
		return e
	}
	e := &memEntry{}
	t.quotas = append(t.quotas, memNamed{name: quota, entry: e})
	return e
}

func (t *memTenant) find(quota string) *memEntry {
	for i := range t.quotas {
		if t.quotas[i].name == quota {
			return t.quotas[i].entry
		}
	}
	return nil
}

func (e *memEntry) limit(def int64) int64 {
	if e.hasOverride {
		return e.override
	}
	return def
}

func (e *memEntry) purgeSlots(now time.Time) {
	for id, exp := range e.slots {
		if !exp.After(now) {
			delete(e.slots, id)
		}
	}
}

// TakeRate implements RateStore.
func (s *MemoryStore) TakeRate(_ context.Context, req RateRequest) (RateResult, error) {
	p := newGCRAParams(req.DefaultLimit, req.Burst, req.Period)
	var res RateResult
	s.takeRate(req.Tenant, req.Quota, req.Now.UnixMicro(), &p, &res)
	return res, nil
}

// takeRate is TakeRate with the parameters of the default limit derived
// already, writing the decision to res (zeroed by the caller). Quotas.Allow
// calls it directly on a memory store (now in Unix µs).
func (s *MemoryStore) takeRate(tenant ID, quota string, now int64, def *gcraParams, res *RateResult) {
	s.mu.Lock()
	e := s.entry(tenant, quota)
	p := def
	if e.hasOverride {
		o := newGCRAParams(e.override, def.burstArg, def.period)
		p = &o
	}
	e.tat = p.take(e.tat, now, res)
	s.mu.Unlock()
}

// RateUsed implements RateStore.
func (s *MemoryStore) RateUsed(_ context.Context, req RateRequest) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entry(req.Tenant, req.Quota)
	return storekit.RateUsed(e.tat, req.Now.UnixMicro(), e.limit(req.DefaultLimit), req.Burst, req.Period), nil
}

// AcquireSlot implements ConcurrencyStore.
func (s *MemoryStore) AcquireSlot(_ context.Context, req SlotRequest) (SlotResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entry(req.Tenant, req.Quota)
	if e.slots == nil {
		e.slots = map[string]time.Time{}
	}
	e.purgeSlots(req.Now)
	res := SlotResult{Limit: e.limit(req.DefaultLimit)}
	if _, held := e.slots[req.Holder]; held || res.Limit == Unlimited || int64(len(e.slots)) < res.Limit {
		res.ExpiresAt = req.Now.Add(req.Lease)
		e.slots[req.Holder] = res.ExpiresAt
		res.Held = true
	}
	res.Current = int64(len(e.slots))
	return res, nil
}

// RenewSlot implements ConcurrencyStore.
func (s *MemoryStore) RenewSlot(_ context.Context, req SlotRequest) (SlotResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entry(req.Tenant, req.Quota)
	e.purgeSlots(req.Now)
	var res SlotResult
	if _, held := e.slots[req.Holder]; held {
		res.ExpiresAt = req.Now.Add(req.Lease)
		e.slots[req.Holder] = res.ExpiresAt
		res.Held = true
	}
	res.Current = int64(len(e.slots))
	return res, nil
}

// ReleaseSlot implements ConcurrencyStore.
func (s *MemoryStore) ReleaseSlot(_ context.Context, tenant ID, quota, holder string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entry(tenant, quota)
	_, held := e.slots[holder]
	delete(e.slots, holder)
	return held, nil
}

// SlotsHeld implements ConcurrencyStore.
func (s *MemoryStore) SlotsHeld(_ context.Context, tenant ID, quota string, now time.Time) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entry(tenant, quota)
	e.purgeSlots(now)
	return int64(len(e.slots)), nil
}
