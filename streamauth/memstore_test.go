package streamauth_test

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening/streamauth"
	"github.com/systembuilderhub/hardening/streamauth/storetest"
)

func TestMemoryRevocationStoreConformance(t *testing.T) {
	storetest.Run(t, func(*testing.T) streamauth.RevocationStore { return streamauth.NewMemoryRevocationStore() })
}

// TestMemoryRevocationStoreReplicas: one store shared by two registries of
// one process.
func TestMemoryRevocationStoreReplicas(t *testing.T) {
	storetest.RunReplicas(t, func(*testing.T) (streamauth.RevocationStore, streamauth.RevocationStore) {
		s := streamauth.NewMemoryRevocationStore()
		return s, s
	})
}

// flakyStore fails while fail is set.
type flakyStore struct {
	streamauth.RevocationStore
	fail  atomic.Bool
	loads atomic.Int32
}

var errBackend = errors.New("backend down")

func (f *flakyStore) Add(ctx context.Context, r streamauth.Revocation) error {
	if f.fail.Load() {
		return errBackend
	}
	return f.RevocationStore.Add(ctx, r)
}

func (f *flakyStore) Load(ctx context.Context, now time.Time) ([]streamauth.Revocation, error) {
	f.loads.Add(1)
	if f.fail.Load() {
		return nil, errBackend
	}
	return f.RevocationStore.Load(ctx, now)
}

// TestRevocationStoreFailures: a store that cannot load refuses streams
// (503 auth_unavailable, fail closed) until a load succeeds; a store
// that cannot add still lets Revoke drop the streams and refuse the token
// in this process, and says so with ErrRevocationNotStored.
func TestRevocationStoreFailures(t *testing.T) {
	t.Parallel()
	auth := newAuth(t)
	store := &flakyStore{RevocationStore: streamauth.NewMemoryRevocationStore()}
	store.fail.Store(true)
	reg := newRegistry(t, streamauth.WithRevocationStore(store))
	url := sseServer(t, auth, reg, streamauth.ForwardSSE)
	c := httpClient(t)
	now := time.Now()
	tok := signedToken(t, auth, "alice", "acme", now.Add(-time.Minute), now.Add(time.Hour))

	sc := openSSE(t, c, url, tok)
	assert.Equal(t, http.StatusServiceUnavailable, sc.resp.StatusCode)
	body, _ := sc.rest()
	assert.Contains(t, body, `"reason":"auth_unavailable"`)
	assert.Error(t, reg.LoadRevocations(context.Background()))

	store.fail.Store(false)
	sc = openSSE(t, c, url, tok)
	require.Equal(t, http.StatusOK, sc.resp.StatusCode)
	openSSE(t, c, url, tok)
	loads := store.loads.Load()
	openSSE(t, c, url, tok)
	assert.Equal(t, loads, store.loads.Load(), "a fresh mirror is not read again on admission")

	store.fail.Store(true)
	n, err := reg.Revoke(context.Background(), streamauth.Selector{Subject: "alice"})
	assert.ErrorIs(t, err, streamauth.ErrRevocationNotStored)
	assert.ErrorIs(t, err, errBackend)
	assert.Equal(t, 3, n, "the local streams are dropped regardless")
	sc.until(t, "event: auth_revoked")
	again := openSSE(t, c, url, tok)
	assert.Equal(t, http.StatusUnauthorized, again.resp.StatusCode, "this process refuses the token")
}
