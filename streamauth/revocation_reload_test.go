package streamauth_test

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening/internal/testenv"
	"github.com/systembuilderhub/hardening/streamauth"
	"github.com/systembuilderhub/hardening/streamauth/sqlitestore"
)

// fakeClock is a settable clock for registries.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock(t time.Time) *fakeClock { c := &fakeClock{}; c.ns.Store(t.UnixNano()); return c }
func (c *fakeClock) now() time.Time       { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) add(d time.Duration)  { c.ns.Add(int64(d)) }

// untilWithin is sc.until, failing when want has not come within d (a
// liveness bound: the stream is closed then).
func untilWithin(t *testing.T, sc *sseClient, want string, d time.Duration) {
	t.Helper()
	timer := time.AfterFunc(d, sc.close)
	defer timer.Stop()
	sc.until(t, want)
}

// sharedStores are the stores two replicas share: one memory store, or
// two connection pools on one migrated SQLite file (no bus in either).
var sharedStores = map[string]func(t *testing.T) (streamauth.RevocationStore, streamauth.RevocationStore){
	"memory": func(*testing.T) (streamauth.RevocationStore, streamauth.RevocationStore) {
		s := streamauth.NewMemoryRevocationStore()
		return s, s
	},
	"sqlite": func(t *testing.T) (streamauth.RevocationStore, streamauth.RevocationStore) {
		_, path := testenv.SQLiteFile(t)
		a, err := sqlitestore.New(testenv.OpenSQLite(t, path))
		require.NoError(t, err)
		b, err := sqlitestore.New(testenv.OpenSQLite(t, path))
		require.NoError(t, err)
		return a, b
	},
}

// TestReplicaLearnsRevocationOnAdmission: without a Broadcaster, replica B
// refuses a token revoked on replica A once its mirror is older than the
// refresh interval (401 token_revoked), and the reload drops B's open
// stream of that user.
func TestReplicaLearnsRevocationOnAdmission(t *testing.T) {
	t.Parallel()
	for name, stores := range sharedStores {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			auth := newAuth(t)
			clk := newFakeClock(time.Now())
			sa, sb := stores(t)
			opts := []streamauth.Option{streamauth.WithClock(clk.now), streamauth.WithRevocationRefresh(time.Hour)}
			a := newRegistry(t, append(opts, streamauth.WithRevocationStore(sa))...)
			b := newRegistry(t, append(opts, streamauth.WithRevocationStore(sb))...)
			urlB := sseServer(t, auth, b, streamauth.ForwardSSE)
			c := httpClient(t)
			now := time.Now()
			tok := signedToken(t, auth, "alice", "acme", now.Add(-time.Minute), now.Add(24*time.Hour))
			bob := signedToken(t, auth, "bob", "acme", now.Add(-time.Minute), now.Add(24*time.Hour))

			open := openSSE(t, c, urlB, tok)
			require.Equal(t, http.StatusOK, open.resp.StatusCode)
			other := openSSE(t, c, urlB, bob)
			require.Equal(t, http.StatusOK, other.resp.StatusCode)
			_, err := a.Revoke(context.Background(), streamauth.Selector{Subject: "alice"})
			require.NoError(t, err)

			clk.add(time.Hour + time.Second)
			again := openSSE(t, c, urlB, tok)
			require.Equal(t, http.StatusUnauthorized, again.resp.StatusCode, "B refuses the token A revoked")
			body, _ := again.rest()
			assert.Contains(t, body, `"reason":"token_revoked"`)
			untilWithin(t, open, "event: auth_revoked", 5*time.Second)
			assert.Equal(t, uint64(1), b.Status().ByReason[streamauth.ReasonRevoked], "bob's stream stays")
			fresh := signedToken(t, auth, "alice", "acme", clk.now().Add(2*time.Second), now.Add(24*time.Hour))
			assert.Equal(t, http.StatusOK, openSSE(t, c, urlB, fresh).resp.StatusCode, "a token issued after the revocation")
		})
	}
}

// TestReplicaLearnsRevocationInBackground: the background reload alone
// (real clock, short interval, no bus, no admission) drops B's open stream
// of the user A revoked.
func TestReplicaLearnsRevocationInBackground(t *testing.T) {
	t.Parallel()
	for name, stores := range sharedStores {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			auth := newAuth(t)
			sa, sb := stores(t)
			refresh := streamauth.WithRevocationRefresh(50 * time.Millisecond)
			a := newRegistry(t, refresh, streamauth.WithRevocationStore(sa))
			b := newRegistry(t, refresh, streamauth.WithRevocationStore(sb))
			urlB := sseServer(t, auth, b, streamauth.ForwardSSE)
			c := httpClient(t)
			now := time.Now()
			tok := signedToken(t, auth, "alice", "acme", now.Add(-time.Minute), now.Add(time.Hour))
			open := openSSE(t, c, urlB, tok)
			require.Equal(t, http.StatusOK, open.resp.StatusCode)

			_, err := a.Revoke(context.Background(), streamauth.Selector{Tenant: "acme"})
			require.NoError(t, err)
			untilWithin(t, open, "event: auth_revoked", 5*time.Second)
			assert.Equal(t, http.StatusUnauthorized, openSSE(t, c, urlB, tok).resp.StatusCode)
		})
	}
}

// TestStaleMirrorFailsClosed: a fresh mirror admits without the store; a
// mirror older than the refresh interval whose store fails refuses with
// 503 auth_unavailable, and admits again once the store answers.
func TestStaleMirrorFailsClosed(t *testing.T) {
	t.Parallel()
	auth := newAuth(t)
	clk := newFakeClock(time.Now())
	store := &flakyStore{RevocationStore: streamauth.NewMemoryRevocationStore()}
	reg := newRegistry(t, streamauth.WithRevocationStore(store), streamauth.WithClock(clk.now),
		streamauth.WithRevocationRefresh(time.Hour))
	require.NoError(t, reg.LoadRevocations(context.Background()))
	url := sseServer(t, auth, reg, streamauth.ForwardSSE)
	c := httpClient(t)
	now := time.Now()
	tok := signedToken(t, auth, "alice", "acme", now.Add(-time.Minute), now.Add(24*time.Hour))

	store.fail.Store(true)
	clk.add(59 * time.Minute)
	assert.Equal(t, http.StatusOK, openSSE(t, c, url, tok).resp.StatusCode, "the mirror is fresh")
	clk.add(2 * time.Minute)
	sc := openSSE(t, c, url, tok)
	require.Equal(t, http.StatusServiceUnavailable, sc.resp.StatusCode, "stale mirror, store down")
	body, _ := sc.rest()
	assert.Contains(t, body, `"reason":"auth_unavailable"`)
	store.fail.Store(false)
	assert.Equal(t, http.StatusOK, openSSE(t, c, url, tok).resp.StatusCode)
}

// gateStore blocks every Load until released, counting them.
type gateStore struct {
	streamauth.RevocationStore
	loads   atomic.Int32
	release chan struct{}
}

func (g *gateStore) Load(ctx context.Context, now time.Time) ([]streamauth.Revocation, error) {
	g.loads.Add(1)
	select {
	case <-g.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return g.RevocationStore.Load(ctx, now)
}

// TestReloadIsShared: concurrent loads share one store read; a waiter whose
// ctx ends leaves with an error without cancelling the others.
func TestReloadIsShared(t *testing.T) {
	t.Parallel()
	g := &gateStore{RevocationStore: streamauth.NewMemoryRevocationStore(), release: make(chan struct{})}
	reg := newRegistry(t, streamauth.WithRevocationStore(g), streamauth.WithRevocationRefreshTimeout(time.Minute))
	var wg sync.WaitGroup
	errs := make([]error, 20)
	for i := range errs {
		wg.Go(func() { errs[i] = reg.LoadRevocations(context.Background()) })
	}
	waitFor(t, "the read started", func() bool { return g.loads.Load() >= 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	assert.ErrorIs(t, reg.LoadRevocations(ctx), context.DeadlineExceeded, "a waiter honours its ctx")
	close(g.release)
	wg.Wait()
	for _, err := range errs {
		assert.NoError(t, err)
	}
	assert.Equal(t, int32(1), g.loads.Load(), "one read for every concurrent caller")
}

// TestReloadTimeout: a store that does not answer within the refresh
// timeout refuses the admission (503) instead of holding it.
func TestReloadTimeout(t *testing.T) {
	t.Parallel()
	g := &gateStore{RevocationStore: streamauth.NewMemoryRevocationStore(), release: make(chan struct{})}
	reg := newRegistry(t, streamauth.WithRevocationStore(g), streamauth.WithRevocationRefreshTimeout(50*time.Millisecond))
	err := reg.LoadRevocations(context.Background())
	assert.ErrorIs(t, err, context.DeadlineExceeded)
}

// TestCloseStopsRefresh: after Close the registry no longer reads the
// store (goleak in TestMain checks the goroutine is gone).
func TestCloseStopsRefresh(t *testing.T) {
	t.Parallel()
	store := &flakyStore{RevocationStore: streamauth.NewMemoryRevocationStore()}
	reg, err := streamauth.NewRegistry(streamauth.WithRevocationStore(store), streamauth.WithRevocationRefresh(10*time.Millisecond))
	require.NoError(t, err)
	waitFor(t, "background reads", func() bool { return store.loads.Load() >= 2 })
	require.NoError(t, reg.Close(context.Background()))
	n := store.loads.Load()
	time.Sleep(100 * time.Millisecond)
	assert.Equal(t, n, store.loads.Load(), "no read after Close")
}

func TestRevocationRefreshMustBePositive(t *testing.T) {
	t.Parallel()
	_, err := streamauth.NewRegistry(streamauth.WithRevocationRefresh(0))
	assert.Error(t, err)
	_, err = streamauth.NewRegistry(streamauth.WithRevocationRefreshTimeout(-time.Second))
	assert.Error(t, err)
}
