package flags

import (
	"context"
	"sync"
)

// MemoryStore is a Store in process memory, for tests and single-process
// services. The zero value is not usable; use NewMemoryStore.
type MemoryStore struct {
	mu      sync.Mutex
	version int64
	values  map[scopeKey]bool
	audit   []Record // audit[i].ID == i+1
}

type scopeKey struct{ flag, tenant string }

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{values: make(map[scopeKey]bool)}
}

// Load implements Store.
func (s *MemoryStore) Load(ctx context.Context) (State, error) {
	if err := ctx.Err(); err != nil {
		return State{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := State{Version: s.version, Values: make([]Value, 0, len(s.values))}
	for k, v := range s.values {
		st.Values = append(st.Values, Value{Flag: k.flag, TenantID: k.tenant, Value: v})
	}
	return st, nil
}

// Version implements Store.
func (s *MemoryStore) Version(ctx context.Context) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.version, nil
}

// Toggle implements Store.
func (s *MemoryStore) Toggle(ctx context.Context, req ToggleRequest) (Record, error) {
	if err := ctx.Err(); err != nil {
		return Record{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k := scopeKey{req.Flag, req.TenantID}
	rec := Record{
		ID:        int64(len(s.audit)) + 1,
		Flag:      req.Flag,
		TenantID:  req.TenantID,
		NewValue:  req.Value,
		ChangedBy: req.By,
		ChangedAt: req.At.UTC(),
		Reason:    req.Reason,
	}
	if old, ok := s.values[k]; ok {
		rec.OldValue = &old
	}
	s.values[k] = req.Value
	s.version++
	s.audit = append(s.audit, rec)
	return rec, nil
}

// Audit implements Store.
func (s *MemoryStore) Audit(ctx context.Context, q AuditQuery) (AuditPage, error) {
	if err := ctx.Err(); err != nil {
		return AuditPage{}, err
	}
	before, err := q.Normalize()
	if err != nil {
		return AuditPage{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	i := len(s.audit) - 1
	if before > 0 && before-2 < int64(i) {
		i = int(before - 2)
	}
	var page AuditPage
	for ; i >= 0; i-- {
		r := s.audit[i]
		if !q.Match(&r) {
			continue
		}
		if r.OldValue != nil {
			old := *r.OldValue
			r.OldValue = &old
		}
		if len(page.Entries) == q.Limit {
			page.NextCursor = EncodeCursor(page.Entries[len(page.Entries)-1].ID)
			break
		}
		page.Entries = append(page.Entries, r)
	}
	return page, nil
}
