package idempotency

import (
	"bytes"
	"context"
	"sync"
	"time"
)

// MemoryStore is a Store held in process memory. It suits tests and
// single-process services; records do not survive a restart and are not
// shared between processes. Run a sweeper (Middleware.Start) to free
// expired records. The zero value is not usable: call NewMemoryStore.
type MemoryStore struct {
	mu   sync.Mutex
	recs map[string]*memRecord
}

type memRecord struct {
	fingerprint string
	completed   bool
	owner       string
	leaseUntil  time.Time
	expiresAt   time.Time
	record      Record
}

var (
	_ Store       = (*MemoryStore)(nil)
	_ Sweeper     = (*MemoryStore)(nil)
	_ StatsReader = (*MemoryStore)(nil)
)

// NewMemoryStore returns an empty in-memory store.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{recs: make(map[string]*memRecord)}
}

// String returns "memory", the store's kind.
func (s *MemoryStore) String() string { return "memory" }

// Claim implements Store.
func (s *MemoryStore) Claim(ctx context.Context, req ClaimRequest) (ClaimResult, error) {
	if err := ctx.Err(); err != nil {
		return ClaimResult{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.recs[req.Key]
	if !ok || !r.expiresAt.After(req.Now) {
		s.recs[req.Key] = &memRecord{
			fingerprint: req.Fingerprint,
			owner:       req.Owner,
			leaseUntil:  req.Now.Add(req.LockTimeout),
			expiresAt:   req.Now.Add(req.TTL),
		}
		return ClaimResult{Status: Claimed}, nil
	}
	switch {
	case r.fingerprint != req.Fingerprint:
		return ClaimResult{Status: Mismatch}, nil
	case r.completed:
		rec := cloneRecord(r.record)
		return ClaimResult{Status: Completed, Record: &rec}, nil
	case r.leaseUntil.After(req.Now):
		return ClaimResult{Status: InFlight, LeaseExpiresAt: r.leaseUntil}, nil
	}
	r.owner = req.Owner
	r.leaseUntil = req.Now.Add(req.LockTimeout)
	return ClaimResult{Status: Claimed, TookOver: true}, nil
}

// Complete implements Store.
func (s *MemoryStore) Complete(ctx context.Context, req CompleteRequest) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.recs[req.Key]
	if !ok || r.completed || r.owner != req.Owner {
		return false, nil
	}
	r.completed = true
	r.owner = ""
	r.leaseUntil = time.Time{}
	r.expiresAt = req.Now.Add(req.TTL)
	r.record = cloneRecord(req.Record)
	return true, nil
}

// Release implements Store.
func (s *MemoryStore) Release(ctx context.Context, key, owner string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.recs[key]
	if !ok || r.completed || r.owner != owner {
		return false, nil
	}
	delete(s.recs, key)
	return true, nil
}

// Renew implements Store.
func (s *MemoryStore) Renew(ctx context.Context, req RenewRequest) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.recs[req.Key]
	if !ok || r.completed || r.owner != req.Owner || !r.expiresAt.After(req.Now) {
		return false, nil
	}
	r.leaseUntil = req.Now.Add(req.LockTimeout)
	if r.expiresAt.Before(r.leaseUntil) {
		r.expiresAt = r.leaseUntil
	}
	return true, nil
}

// Sweep implements Sweeper.
func (s *MemoryStore) Sweep(ctx context.Context, now time.Time, limit int) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for k, r := range s.recs {
		if n >= limit {
			break
		}
		if !r.expiresAt.After(now) {
			delete(s.recs, k)
			n++
		}
	}
	return n, nil
}

// Stats implements StatsReader.
func (s *MemoryStore) Stats(ctx context.Context, now time.Time) (Stats, error) {
	if err := ctx.Err(); err != nil {
		return Stats{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var st Stats
	for _, r := range s.recs {
		if !r.expiresAt.After(now) {
			continue
		}
		st.Keys++
		if !r.completed && r.leaseUntil.After(now) {
			st.InFlight++
		}
	}
	return st, nil
}

func cloneRecord(r Record) Record {
	r.Header = r.Header.Clone()
	if r.Body != nil {
		r.Body = bytes.Clone(r.Body)
	}
	return r
}
