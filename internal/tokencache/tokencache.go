// Package tokencache is the kit's verified-token cache: a bounded,
// concurrency-safe map from the SHA-256 of a token to what verifying it
// produced (its decoded claims), so that a token presented again skips the
// signature check and the JSON decoding. previewsec and streamauth use it;
// Envoy's jwt_authn jwt_cache_config is the model.
//
// The rules every user relies on:
//
//   - The key is sha256(token), never the token itself: the raw token is not
//     kept, and a collision (which would let one token pass as another) is
//     as hard as breaking SHA-256. Never swap in a non-cryptographic hash.
//   - Only successes are stored, by the caller, after a full verification.
//   - Each entry carries the interval in which it may be used (from the
//     token's nbf/iat to its exp): Get checks it against the time it is
//     given (the caller's injected clock) and drops an entry whose exp has
//     passed, so an entry never outlives its token.
//   - The cache holds at most its size in entries. A full shard evicts with
//     the CLOCK algorithm (expired entries first, then one not read since
//     the hand last passed), so a flood of distinct valid tokens only
//     recycles slots: memory does not grow.
//   - Everything the caller must check per request (revocation, tenant,
//     audience, the key still being in its key ring) stays the caller's job
//     on every hit.
//
// There is no background goroutine: expired entries are dropped when read
// or when their slot is reused.
package tokencache

import (
	"crypto/sha256"
	"math"
	"sync"
	"time"
)

// Key identifies a token in the cache: its SHA-256.
type Key [sha256.Size]byte

// stackTokenLen is the longest token KeyOf hashes from a stack copy.
// Converting a longer string to []byte allocates (the compiler's own stack
// buffer holds 32 bytes), so a typical token (a few hundred bytes) is
// copied into a fixed array first: a hit then allocates nothing.
const stackTokenLen = 2048

// KeyOf returns the cache key of token: its SHA-256. It allocates only for
// tokens longer than 2 KiB.
func KeyOf(token string) Key {
	if len(token) > stackTokenLen {
		return sha256.Sum256([]byte(token))
	}
	var buf [stackTokenLen]byte
	n := copy(buf[:], token)
	return sha256.Sum256(buf[:n])
}

// Cacheable reports whether token may be cached: only a token spelled in
// the JWS compact alphabet (base64url letters, digits, '-', '_' and '.')
// is. Base64 decoding ignores CR and LF, so one valid token has countless
// spellings that verify (a line break anywhere in its signature); caching
// them would let the holder of one token evict every other entry. Such a
// spelling is verified in full each time instead, and never stored.
func Cacheable(token string) bool {
	for i := 0; i < len(token); i++ {
		b := token[i]
		if !('a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || b == '-' || b == '_' || b == '.') {
			return false
		}
	}
	return true
}

// maxShards bounds the number of independently locked shards.
const maxShards = 16

// Cache maps token hashes to verified values of type V. A nil *Cache is a
// disabled cache: Get misses and Put, Delete do nothing. A Cache is safe for
// concurrent use.
type Cache[V any] struct {
	shards []shard[V]
	mask   uint32
}

type shard[V any] struct {
	mu    sync.Mutex
	index map[Key]int32
	slots []slot[V] // grows to max, then slots are reused
	max   int
	hand  int
	_     [64]byte // padding: neighbouring shards' locks off one cache line
}

type slot[V any] struct {
	key         Key
	val         V
	from, until int64 // usable while from <= now < until (Unix ns)
	ref         bool  // read since the CLOCK hand last passed
	live        bool
}

// New returns a cache of at most size entries, or nil (a disabled cache)
// when size <= 0.
func New[V any](size int) *Cache[V] {
	if size <= 0 {
		return nil
	}
	n := 1
	for n*2 <= maxShards && n*2 <= size {
		n *= 2
	}
	per := size / n
	c := &Cache[V]{shards: make([]shard[V], n), mask: uint32(n - 1)}
	for i := range c.shards {
		c.shards[i].index = make(map[Key]int32)
		c.shards[i].max = per
	}
	return c
}

func (c *Cache[V]) shard(k Key) *shard[V] {
	return &c.shards[uint32(k[0])&c.mask]
}

// Get returns the value stored under k if its interval contains now. An
// entry whose exp has passed is removed.
func (c *Cache[V]) Get(k Key, now time.Time) (V, bool) {
	var zero V
	if c == nil {
		return zero, false
	}
	t := now.UnixNano()
	s := c.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	i, ok := s.index[k]
	if !ok {
		return zero, false
	}
	sl := &s.slots[i]
	if t >= sl.until {
		s.remove(i)
		return zero, false
	}
	if t < sl.from {
		return zero, false
	}
	sl.ref = true
	return sl.val, true
}

// Put stores v under k, usable from from until (excluded) until. A zero
// from means "since always". Nothing is stored when until is not after
// now. An entry already under k is replaced.
func (c *Cache[V]) Put(k Key, v V, from, until, now time.Time) {
	if c == nil || !until.After(now) {
		return
	}
	f := int64(math.MinInt64)
	if !from.IsZero() {
		f = from.UnixNano()
	}
	t := now.UnixNano()
	s := c.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	i, ok := s.index[k]
	if !ok {
		i = s.victim(t)
		s.index[k] = i
	}
	s.slots[i] = slot[V]{key: k, val: v, from: f, until: until.UnixNano(), live: true}
}

// Delete removes the entry under k, if any.
func (c *Cache[V]) Delete(k Key) {
	if c == nil {
		return
	}
	s := c.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	if i, ok := s.index[k]; ok {
		s.remove(i)
	}
}

// Len returns the number of entries held (expired ones included until they
// are read or evicted).
func (c *Cache[V]) Len() int {
	if c == nil {
		return 0
	}
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		n += len(s.index)
		s.mu.Unlock()
	}
	return n
}

// Cap returns the most entries the cache holds (0 when disabled).
func (c *Cache[V]) Cap() int {
	if c == nil {
		return 0
	}
	return len(c.shards) * c.shards[0].max
}

// remove empties slot i; s.mu is held.
func (s *shard[V]) remove(i int32) {
	delete(s.index, s.slots[i].key)
	s.slots[i] = slot[V]{}
}

// victim returns a free slot: a new one until the shard holds max, then
// one the CLOCK hand takes: the first empty or expired slot, or the first
// one not read since the hand last passed it. s.mu is held.
func (s *shard[V]) victim(now int64) int32 {
	if len(s.slots) < s.max {
		s.slots = append(s.slots, slot[V]{})
		return int32(len(s.slots) - 1)
	}
	n := len(s.slots)
	for range 2 * n {
		i := s.hand
		s.hand = (s.hand + 1) % n
		sl := &s.slots[i]
		switch {
		case !sl.live:
			return int32(i)
		case now >= sl.until:
			s.remove(int32(i))
			return int32(i)
		case sl.ref:
			sl.ref = false
		default:
			s.remove(int32(i))
			return int32(i)
		}
	}
	// Unreachable: after one turn every ref bit is clear.
	i := s.hand
	s.remove(int32(i))
	return int32(i)
}
