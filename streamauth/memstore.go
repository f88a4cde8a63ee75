package streamauth

import (
	"context"
	"sync"
	"time"
)

// MemoryRevocationStore is a RevocationStore in process memory: its
// revocations outlive a Registry, not the process. It is the store of
// tests and of single-process setups without a database; a Registry
// without WithRevocationStore keeps the same in-memory set itself.
type MemoryRevocationStore struct {
	mu sync.Mutex
	m  map[revokeKey]revocation
}

var _ RevocationStore = (*MemoryRevocationStore)(nil)

// NewMemoryRevocationStore returns an empty store.
func NewMemoryRevocationStore() *MemoryRevocationStore {
	return &MemoryRevocationStore{m: make(map[revokeKey]revocation)}
}

// Add implements RevocationStore.
func (s *MemoryRevocationStore) Add(_ context.Context, rev Revocation) error {
	if err := rev.Validate(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// Expired entries are swept by Load, on the caller's clock.
	mergeRevocation(s.m, rev, time.Time{})
	return nil
}

// Load implements RevocationStore; it deletes the revocations expired at
// now.
func (s *MemoryRevocationStore) Load(_ context.Context, now time.Time) ([]Revocation, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Revocation, 0, len(s.m))
	for k, v := range s.m {
		if !now.Before(v.exp) {
			delete(s.m, k)
			continue
		}
		out = append(out, Revocation{Subject: k.user, Tenant: k.tenant, RevokedAt: v.at, ExpiresAt: v.exp})
	}
	return out, nil
}
