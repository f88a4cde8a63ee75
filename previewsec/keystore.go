package previewsec

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/systembuilderhub/hardening/previewsec/internal/keyrules"
)

// Key is one signing key of the ring: the HMAC-SHA256 secret that signs the
// tokens of one rotation period and verifies them until ExpiresAt.
type Key struct {
	// ID is the key id written in the token header's "kid". It is derived
	// from PeriodStart: the period start in UTC, "20060102T150405Z".
	ID string
	// PeriodStart is the start of the rotation period the key signs in.
	PeriodStart time.Time
	// Secret is the HMAC key: 32 random bytes (or HKDF output in the
	// derived mode). It never leaves the process except to the KeyStore.
	Secret []byte
	// CreatedAt is when the key was created.
	CreatedAt time.Time
	// ExpiresAt is when the key stops verifying and may be deleted: the end
	// of its period plus the longest token lifetime plus the leeway.
	ExpiresAt time.Time
}

// KeyCreateResult is the outcome of KeyStore.CreateKey.
type KeyCreateResult struct {
	// Key is the key stored for the period: the one passed in when Created,
	// else the one another replica created first.
	Key Key
	// Created reports whether this call stored the key.
	Created bool
}

// KeyStore keeps the key ring's keys so that every replica signs and
// verifies with the same keys. Implementations must make CreateKey an
// atomic create-if-absent on Key.PeriodStart: when two replicas create a
// key for the same period at the same moment, both get back the same key.
//
// Implementations: NewMemoryKeyStore (one process), sqlitestore,
// postgresstore and redisstore. Every implementation passes
// keystoretest.Run.
type KeyStore interface {
	// CreateKey stores k unless a key for k.PeriodStart already exists, and
	// returns the key stored for that period.
	CreateKey(ctx context.Context, k Key) (KeyCreateResult, error)
	// Keys returns the keys with ExpiresAt after now, oldest period first.
	Keys(ctx context.Context, now time.Time) ([]Key, error)
	// DeleteExpiredKeys deletes the keys with ExpiresAt at or before now and
	// returns how many it deleted.
	DeleteExpiredKeys(ctx context.Context, now time.Time) (int, error)
}

// RevocationKind says what a Revocation names.
type RevocationKind string

const (
	// RevokePreviewID revokes every token of one preview issued at or
	// before the revocation time.
	RevokePreviewID RevocationKind = "pid"
	// RevokeTokenID revokes the one token with that jti.
	RevokeTokenID RevocationKind = "jti"
)

// Revocation is one entry of the revocation list.
type Revocation struct {
	// Kind is RevokePreviewID or RevokeTokenID.
	Kind RevocationKind
	// Value is the preview id or the token id (jti).
	Value string
	// RevokedAt is when the revocation was made. For a preview id, tokens
	// issued at or before it are revoked; later ones are not.
	RevokedAt time.Time
	// ExpiresAt is when the entry may be forgotten: no token it revokes can
	// still be valid by then.
	ExpiresAt time.Time
}

// RevocationStore keeps revoked preview ids and token ids, each with the
// time after which it can be forgotten, so the list stays small.
// Revoke of an existing entry keeps the later RevokedAt and the later
// ExpiresAt. Every implementation passes keystoretest.Run.
type RevocationStore interface {
	// Revoke records rev.
	Revoke(ctx context.Context, rev Revocation) error
	// Revocations returns the entries with ExpiresAt after now.
	Revocations(ctx context.Context, now time.Time) ([]Revocation, error)
	// DeleteExpiredRevocations deletes the entries with ExpiresAt at or
	// before now and returns how many it deleted.
	DeleteExpiredRevocations(ctx context.Context, now time.Time) (int, error)
}

// ErrKeyConflict is returned by a KeyStore when a key's ID is already
// stored for a different period (a corrupt or foreign key table).
var ErrKeyConflict = errors.New("previewsec: key id already used by another period")

// MemoryKeyStore is a KeyStore and RevocationStore held in memory: for one
// process, tests, and as the reference the other stores are checked
// against. Its zero value is not usable; call NewMemoryKeyStore.
type MemoryKeyStore struct {
	mu   sync.Mutex
	keys map[int64]Key // by PeriodStart in Unix ms
	revs map[RevocationKind]map[string]Revocation
}

var (
	_ KeyStore        = (*MemoryKeyStore)(nil)
	_ RevocationStore = (*MemoryKeyStore)(nil)
)

// NewMemoryKeyStore returns an empty in-memory store.
func NewMemoryKeyStore() *MemoryKeyStore {
	return &MemoryKeyStore{
		keys: make(map[int64]Key),
		revs: map[RevocationKind]map[string]Revocation{RevokePreviewID: {}, RevokeTokenID: {}},
	}
}

func keyClone(k Key) Key {
	k.Secret = slices.Clone(k.Secret)
	return k
}

// CreateKey implements KeyStore.
func (s *MemoryKeyStore) CreateKey(ctx context.Context, k Key) (KeyCreateResult, error) {
	if err := keyrules.CheckKey(k.ID, k.Secret, k.PeriodStart, k.ExpiresAt); err != nil {
		return KeyCreateResult{}, err
	}
	if err := ctx.Err(); err != nil {
		return KeyCreateResult{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p := k.PeriodStart.UnixMilli()
	if cur, ok := s.keys[p]; ok {
		return KeyCreateResult{Key: keyClone(cur)}, nil
	}
	for _, other := range s.keys {
		if other.ID == k.ID {
			return KeyCreateResult{}, ErrKeyConflict
		}
	}
	k = keyClone(k)
	k.PeriodStart = time.UnixMilli(p).UTC()
	k.CreatedAt = time.UnixMilli(k.CreatedAt.UnixMilli()).UTC()
	k.ExpiresAt = time.UnixMilli(k.ExpiresAt.UnixMilli()).UTC()
	s.keys[p] = k
	return KeyCreateResult{Key: keyClone(k), Created: true}, nil
}

// Keys implements KeyStore.
func (s *MemoryKeyStore) Keys(ctx context.Context, now time.Time) ([]Key, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Key, 0, len(s.keys))
	for _, k := range s.keys {
		if k.ExpiresAt.After(now) {
			out = append(out, keyClone(k))
		}
	}
	sortKeys(out)
	return out, nil
}

// DeleteExpiredKeys implements KeyStore.
func (s *MemoryKeyStore) DeleteExpiredKeys(ctx context.Context, now time.Time) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for p, k := range s.keys {
		if !k.ExpiresAt.After(now) {
			delete(s.keys, p)
			n++
		}
	}
	return n, nil
}

// Revoke implements RevocationStore.
func (s *MemoryKeyStore) Revoke(ctx context.Context, rev Revocation) error {
	if err := keyrules.CheckRevocation(string(rev.Kind), rev.Value, rev.ExpiresAt); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	rev.RevokedAt = time.UnixMilli(rev.RevokedAt.UnixMilli()).UTC()
	rev.ExpiresAt = time.UnixMilli(rev.ExpiresAt.UnixMilli()).UTC()
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur, ok := s.revs[rev.Kind][rev.Value]; ok {
		rev = mergeRevocations(cur, rev)
	}
	s.revs[rev.Kind][rev.Value] = rev
	return nil
}

// Revocations implements RevocationStore.
func (s *MemoryKeyStore) Revocations(ctx context.Context, now time.Time) ([]Revocation, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Revocation
	for _, m := range s.revs {
		for _, r := range m {
			if r.ExpiresAt.After(now) {
				out = append(out, r)
			}
		}
	}
	return out, nil
}

// DeleteExpiredRevocations implements RevocationStore.
func (s *MemoryKeyStore) DeleteExpiredRevocations(ctx context.Context, now time.Time) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, m := range s.revs {
		for v, r := range m {
			if !r.ExpiresAt.After(now) {
				delete(m, v)
				n++
			}
		}
	}
	return n, nil
}

// mergeRevocations combines two entries for the same kind and value: the
// later RevokedAt and the later ExpiresAt win, as the RevocationStore
// contract says.
func mergeRevocations(a, b Revocation) Revocation {
	if b.RevokedAt.After(a.RevokedAt) {
		a.RevokedAt = b.RevokedAt
	}
	if b.ExpiresAt.After(a.ExpiresAt) {
		a.ExpiresAt = b.ExpiresAt
	}
	return a
}

// sortKeys orders keys by PeriodStart, oldest first.
func sortKeys(keys []Key) {
	slices.SortFunc(keys, func(a, b Key) int { return a.PeriodStart.Compare(b.PeriodStart) })
}
