package previewsec

import (
	"context"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/systembuilderhub/hardening/internal/background"
	"github.com/systembuilderhub/hardening/previewsec/internal/keyrules"
)

// Defaults of the key ring and tokens.
const (
	// DefaultRotation is how often the signing key changes
	// (WithKeyRotation).
	DefaultRotation = 24 * time.Hour
	// DefaultTTL is a token's lifetime when the caller asks for none
	// (WithDefaultTTL).
	DefaultTTL = 60 * time.Minute
	// DefaultMaxTTL is the longest lifetime a token may have
	// (WithMaxTTL). Asking for more is an error.
	DefaultMaxTTL = 60 * time.Minute
	// DefaultLeeway is the clock skew tolerated on exp, nbf and iat.
	DefaultLeeway = 30 * time.Second
	// MaxLeeway caps the configurable leeway.
	MaxLeeway = time.Minute
	// MinRotation is the shortest allowed rotation period.
	MinRotation = time.Minute
	// MinSecretSize is the shortest master secret NewDerivedKeyRing accepts
	// (128 bits if random; 32 random bytes are recommended).
	MinSecretSize = 16
)

// keyDerivationSalt separates this kit's derived keys from any other use of
// the same master secret.
const keyDerivationSalt = "github.com/systembuilderhub/hardening/previewsec key ring v1"

// ErrUnavailable is returned (wrapped) when the key or revocation store
// cannot be reached and the decision cannot be made safely. Middleware
// answers it with 503; callers must treat it as a denial.
var ErrUnavailable = errors.New("previewsec: key or revocation store unavailable")

// KeyRing holds the signing keys of preview tokens and rotates them.
//
// Time is cut into periods of the rotation length (WithKeyRotation,
// default 24h) aligned to UTC midnight. The key of the current period signs;
// each key keeps verifying until the end of its period plus the longest
// token lifetime plus the leeway, so a token minted one second before a
// rotation verifies until its own expiry. Then the key is forgotten and
// deleted from the store.
//
// A KeyRing either shares random 256-bit keys with the other replicas
// through a KeyStore (NewKeyRing: the first replica to need a period's key
// creates it with an atomic create-if-absent, the others load it), or
// derives each period's key with HKDF-SHA256 from a master secret
// (NewDerivedKeyRing: stateless, nothing stored).
//
// Keys are cached in memory: in steady state signing and verifying make no
// store round trip. The store is read when a period starts, when a token
// names a plausible key the ring has not loaded (at most once per second),
// and by the optional background loop (Start). A KeyRing is safe for
// concurrent use.
type KeyRing struct {
	store  KeyStore
	master []byte // derived mode when non-nil

	rotation time.Duration
	maxTTL   time.Duration
	leeway   time.Duration
	now      func() time.Time
	log      *slog.Logger
	random   func([]byte) error

	state atomic.Pointer[keyRingState]

	mu          sync.Mutex // serialises refreshes and derived-cache updates
	lastRefresh time.Time  // by r.now; zero = never

	bg background.Loop
}

type keyRingState struct {
	byID    map[string]Key
	current Key
	hasCur  bool
}

// WithKeyRotation sets the rotation period. It must be at least MinRotation
// and divide a day or be a whole number of days, so periods stay aligned to
// UTC midnight.
func WithKeyRotation(d time.Duration) KeyRingOption {
	return keyRingOption(func(r *KeyRing) { r.rotation = d })
}

// WithMaxTTL sets the longest token lifetime (default DefaultMaxTTL).
// Issuers refuse longer lifetimes and verifiers reject tokens whose exp-iat
// exceeds it; keys are kept this long past their period.
func WithMaxTTL(d time.Duration) KeyRingOption {
	return keyRingOption(func(r *KeyRing) { r.maxTTL = d })
}

// WithLeeway sets the clock skew tolerated on exp, nbf and iat
// (default DefaultLeeway, at most MaxLeeway).
func WithLeeway(d time.Duration) KeyRingOption {
	return keyRingOption(func(r *KeyRing) { r.leeway = d })
}

// NewKeyRing returns a key ring whose keys are shared through store. It
// does not touch the store; the first Mint (or Refresh, or Start) does.
func NewKeyRing(store KeyStore, opts ...KeyRingOption) (*KeyRing, error) {
	if store == nil {
		return nil, errors.New("previewsec: NewKeyRing needs a KeyStore")
	}
	return newKeyRing(store, nil, opts)
}

// NewDerivedKeyRing returns a stateless key ring: the key of each period is
// HKDF-SHA256(secret, period) so replicas with the same secret agree
// without a store. secret must be at least MinSecretSize bytes of high
// entropy. Keys outside the verification window are
// refused even though they could be derived.
func NewDerivedKeyRing(secret []byte, opts ...KeyRingOption) (*KeyRing, error) {
	if len(secret) < MinSecretSize {
		return nil, fmt.Errorf("previewsec: master secret must be at least %d bytes", MinSecretSize)
	}
	return newKeyRing(nil, append([]byte(nil), secret...), opts)
}

func newKeyRing(store KeyStore, master []byte, opts []KeyRingOption) (*KeyRing, error) {
	r := &KeyRing{
		store:    store,
		master:   master,
		rotation: DefaultRotation,
		maxTTL:   DefaultMaxTTL,
		leeway:   DefaultLeeway,
		now:      time.Now,
		random:   func(b []byte) error { _, err := rand.Read(b); return err },
	}
	for _, o := range opts {
		if o != nil {
			o.applyKeyRing(r)
		}
	}
	if err := r.check(); err != nil {
		return nil, err
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	r.state.Store(&keyRingState{byID: map[string]Key{}})
	return r, nil
}

// check reports the first invalid setting of r.
func (r *KeyRing) check() error {
	day := 24 * time.Hour
	switch {
	case r.rotation < MinRotation || (day%r.rotation != 0 && r.rotation%day != 0):
		return fmt.Errorf("previewsec: key rotation %s must be >= %s and divide 24h or be a multiple of it", r.rotation, MinRotation)
	case r.maxTTL <= 0:
		return fmt.Errorf("previewsec: max token TTL %s must be positive", r.maxTTL)
	case r.leeway < 0 || r.leeway > MaxLeeway:
		return fmt.Errorf("previewsec: leeway %s must be between 0 and %s", r.leeway, MaxLeeway)
	}
	return checkClock(r.now)
}

// Rotation returns the rotation period.
func (r *KeyRing) Rotation() time.Duration { return r.rotation }

// MaxTTL returns the longest token lifetime.
func (r *KeyRing) MaxTTL() time.Duration { return r.maxTTL }

// Leeway returns the tolerated clock skew.
func (r *KeyRing) Leeway() time.Duration { return r.leeway }

// PeriodStart returns the start of the rotation period containing t.
func (r *KeyRing) PeriodStart(t time.Time) time.Time {
	rot := int64(r.rotation)
	n := t.UnixNano()
	q := n / rot
	if n < 0 && n%rot != 0 {
		q--
	}
	return time.Unix(0, q*rot).UTC()
}

// keyExpiry is when the key of the period starting at start stops verifying.
func (r *KeyRing) keyExpiry(start time.Time) time.Time {
	return start.Add(r.rotation + r.maxTTL + r.leeway)
}

// SigningKey returns the key of the current period, creating or loading it
// when the period has just begun.
func (r *KeyRing) SigningKey(ctx context.Context) (Key, error) {
	return r.signingKeyAt(ctx, r.now())
}

func (r *KeyRing) signingKeyAt(ctx context.Context, now time.Time) (Key, error) {
	st := r.state.Load()
	if st.hasCur && !now.Before(st.current.PeriodStart) && now.Before(st.current.PeriodStart.Add(r.rotation)) {
		return st.current, nil
	}
	if r.master != nil {
		return r.deriveAndCache(r.PeriodStart(now), now, true)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	st = r.state.Load()
	if st.hasCur && !now.Before(st.current.PeriodStart) && now.Before(st.current.PeriodStart.Add(r.rotation)) {
		return st.current, nil
	}
	if err := r.refreshLocked(ctx, now); err != nil {
		return Key{}, err
	}
	st = r.state.Load()
	if !st.hasCur {
		return Key{}, fmt.Errorf("%w: no key for the current period", ErrUnavailable)
	}
	return st.current, nil
}

// VerificationKey returns the key named kid if it may still verify tokens.
// An id that is not of the ring's form, or names a period outside the
// verification window, is rejected with ErrUnknownKey without any lookup.
func (r *KeyRing) VerificationKey(ctx context.Context, kid string) (Key, error) {
	return r.verificationKeyAt(ctx, kid, r.now())
}

func (r *KeyRing) verificationKeyAt(ctx context.Context, kid string, now time.Time) (Key, error) {
	if k, ok := r.state.Load().byID[kid]; ok {
		if now.Before(k.ExpiresAt) {
			return k, nil
		}
		return Key{}, ErrUnknownKey
	}
	start, ok := keyrules.ParseKeyID(kid)
	if !ok || !r.plausible(start, now) {
		return Key{}, ErrUnknownKey
	}
	if r.master != nil {
		if start.UnixNano()%int64(r.rotation) != 0 {
			return Key{}, ErrUnknownKey
		}
		return r.deriveAndCache(start, now, false)
	}
	// A key of a plausible period we have not loaded: another replica may
	// have created it. Reload, at most once per second.
	r.mu.Lock()
	defer r.mu.Unlock()
	if k, ok := r.state.Load().byID[kid]; ok && now.Before(k.ExpiresAt) {
		return k, nil
	}
	if !r.lastRefresh.IsZero() && now.Sub(r.lastRefresh) < time.Second && !now.Before(r.lastRefresh) {
		return Key{}, ErrUnknownKey
	}
	if err := r.refreshLocked(ctx, now); err != nil {
		return Key{}, err
	}
	if k, ok := r.state.Load().byID[kid]; ok && now.Before(k.ExpiresAt) {
		return k, nil
	}
	return Key{}, ErrUnknownKey
}

// plausible reports whether a key for the period starting at start could
// verify a token now: its period has begun (allowing one period of clock
// skew between replicas) and it has not expired.
func (r *KeyRing) plausible(start, now time.Time) bool {
	if start.After(r.PeriodStart(now).Add(r.rotation)) {
		return false
	}
	if start.After(r.PeriodStart(now)) && r.master != nil {
		// Derived keys of the next period are only accepted within the
		// leeway of its start.
		if now.Add(r.leeway).Before(start) {
			return false
		}
	}
	return now.Before(r.keyExpiry(start))
}

// deriveAndCache derives the key of the period starting at start and
// caches it (as current when signing).
func (r *KeyRing) deriveAndCache(start, now time.Time, current bool) (Key, error) {
	kid := keyrules.KeyID(start)
	secret, err := hkdf.Key(sha256.New, r.master, []byte(keyDerivationSalt), "previewsec signing key "+kid, keyrules.SecretSize)
	if err != nil {
		return Key{}, fmt.Errorf("previewsec: derive key: %w", err)
	}
	k := Key{ID: kid, PeriodStart: start, Secret: secret, CreatedAt: start, ExpiresAt: r.keyExpiry(start)}
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.state.Load()
	next := &keyRingState{byID: make(map[string]Key, len(old.byID)+1), current: old.current, hasCur: old.hasCur}
	for id, ok := range old.byID {
		if now.Before(ok.ExpiresAt) {
			next.byID[id] = ok
		}
	}
	next.byID[kid] = k
	if current {
		if !old.hasCur || old.current.ID != kid {
			r.log.Info("previewsec: signing key rotated", "kid", kid, "mode", "derived")
		}
		next.current, next.hasCur = k, true
	}
	r.state.Store(next)
	return k, nil
}

// Refresh makes sure the current period has a key (creating it in the
// store if no replica has yet), loads every key that still verifies and
// deletes expired keys from the store. Mint and Verify call it when needed;
// call it at startup to fail fast on an unreachable store.
func (r *KeyRing) Refresh(ctx context.Context) error {
	now := r.now()
	if r.master != nil {
		_, err := r.deriveAndCache(r.PeriodStart(now), now, true)
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.refreshLocked(ctx, now)
}

func (r *KeyRing) refreshLocked(ctx context.Context, now time.Time) error {
	r.lastRefresh = now
	if _, err := r.store.DeleteExpiredKeys(ctx, now); err != nil {
		r.log.Warn("previewsec: deleting expired keys failed", "err", err)
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	keys, err := r.store.Keys(ctx, now)
	if err != nil {
		r.log.Warn("previewsec: loading keys failed", "err", err)
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	start := r.PeriodStart(now)
	var cur Key
	hasCur := false
	for _, k := range keys {
		if k.PeriodStart.Equal(start) {
			cur, hasCur = k, true
		}
	}
	if !hasCur {
		secret := make([]byte, keyrules.SecretSize)
		if err := r.random(secret); err != nil {
			return fmt.Errorf("previewsec: random key: %w", err)
		}
		res, err := r.store.CreateKey(ctx, Key{
			ID: keyrules.KeyID(start), PeriodStart: start, Secret: secret,
			CreatedAt: now, ExpiresAt: r.keyExpiry(start),
		})
		if err != nil {
			r.log.Warn("previewsec: creating key failed", "err", err)
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		cur, hasCur = res.Key, true
		keys = append(keys, res.Key)
		r.log.Info("previewsec: signing key rotated", "kid", cur.ID, "created_here", res.Created)
	}
	next := &keyRingState{byID: make(map[string]Key, len(keys)), current: cur, hasCur: hasCur}
	for _, k := range keys {
		if now.Before(k.ExpiresAt) {
			next.byID[k.ID] = k
		}
	}
	r.state.Store(next)
	return nil
}

// KeyIDs returns the ids of the keys the ring holds in memory that still
// verify, oldest first (for status pages and tests).
func (r *KeyRing) KeyIDs() []string {
	st := r.state.Load()
	now := r.now()
	keys := make([]Key, 0, len(st.byID))
	for _, k := range st.byID {
		if now.Before(k.ExpiresAt) {
			keys = append(keys, k)
		}
	}
	sortKeys(keys)
	ids := make([]string, len(keys))
	for i, k := range keys {
		ids[i] = k.ID
	}
	return ids
}

// Start runs the ring's background loop until ctx ends or Close is called:
// it refreshes at each period boundary (so the new key exists before the
// first token of the period needs it) and retries failures every few
// seconds. Start is optional; without it the ring refreshes lazily. Calling
// Start twice is an error.
func (r *KeyRing) Start(ctx context.Context) error {
	if err := r.bg.Start(ctx, r.loop); err != nil {
		return fmt.Errorf("previewsec: key ring %w", err)
	}
	return nil
}

func (r *KeyRing) loop(ctx context.Context) {
	for {
		wait := 5 * time.Second
		if err := r.Refresh(ctx); err == nil {
			now := r.now()
			wait = r.PeriodStart(now).Add(r.rotation).Sub(now) + 10*time.Millisecond
			wait = min(wait, time.Hour) // re-check the store's state now and then
		} else if ctx.Err() == nil {
			r.log.Warn("previewsec: key ring refresh failed", "err", err)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// Close stops the background loop started by Start and waits for it, or
// for ctx to end. It is safe to call without Start and more than once.
func (r *KeyRing) Close(ctx context.Context) error { return r.bg.Stop(ctx) }
