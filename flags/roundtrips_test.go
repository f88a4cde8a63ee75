package flags_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening/flags"
)

// countingStore counts every call that reaches the wrapped store.
type countingStore struct {
	flags.Store
	calls atomic.Int64
}

func (s *countingStore) Load(ctx context.Context) (flags.State, error) {
	s.calls.Add(1)
	return s.Store.Load(ctx)
}

func (s *countingStore) Version(ctx context.Context) (int64, error) {
	s.calls.Add(1)
	return s.Store.Version(ctx)
}

func (s *countingStore) Toggle(ctx context.Context, req flags.ToggleRequest) (flags.Record, error) {
	s.calls.Add(1)
	return s.Store.Toggle(ctx, req)
}

func (s *countingStore) Audit(ctx context.Context, q flags.AuditQuery) (flags.AuditPage, error) {
	s.calls.Add(1)
	return s.Store.Audit(ctx, q)
}

// TestReadPathNoRoundTrips: once started, evaluating and listing flags is
// served from the client's cache: the store is called 0 times, whatever
// the backend (the read path is the client's, the same for every store).
func TestReadPathNoRoundTrips(t *testing.T) {
	ctx := context.Background()
	s := &countingStore{Store: flags.NewMemoryStore()}
	c := newClient(t, s, flags.WithPollInterval(time.Hour), flags.WithMaxStaleness(2*time.Hour))
	_, err := c.Toggle(ctx, streaming.Name, true, flags.Change{By: "test", TenantID: "acme"})
	require.NoError(t, err)
	h, err := c.Handle(presets.Name)
	require.NoError(t, err)
	s.calls.Store(0)
	for _, tenant := range []string{"", "acme", "other"} {
		_ = c.Enabled(streaming.Name, tenant, false)
		_ = c.Evaluate(presets.Name, tenant, false)
		_ = c.Evaluate("no.such-flag", tenant, false)
		_ = h.Enabled(tenant)
		require.Len(t, c.List(tenant), 2)
	}
	require.Zero(t, s.calls.Load(), "store calls on the read path")
}
