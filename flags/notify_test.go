package flags_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening/flags"
)

// notifyStore is a MemoryStore that pushes changes like the Redis store,
// and whose first subscription fails.
type notifyStore struct {
	*flags.MemoryStore
	mu       sync.Mutex
	attempts int
	subs     []func(string)
}

func (s *notifyStore) Subscribe(ctx context.Context, fn func(string)) error {
	s.mu.Lock()
	s.attempts++
	if s.attempts == 1 {
		s.mu.Unlock()
		return errors.New("connection refused")
	}
	s.subs = append(s.subs, fn)
	s.mu.Unlock()
	<-ctx.Done()
	return ctx.Err()
}

func (s *notifyStore) Toggle(ctx context.Context, req flags.ToggleRequest) (flags.Record, error) {
	rec, err := s.MemoryStore.Toggle(ctx, req)
	if err == nil {
		s.mu.Lock()
		subs := append([]func(string){}, s.subs...)
		s.mu.Unlock()
		for _, fn := range subs {
			fn(req.Flag)
		}
	}
	return rec, err
}

func (s *notifyStore) subscribed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.subs) > 0
}

// TestNotifierResubscribes: a failed subscription is retried, and after it
// a pushed change reaches the cache with polling practically off.
func TestNotifierResubscribes(t *testing.T) {
	ctx := context.Background()
	s := &notifyStore{MemoryStore: flags.NewMemoryStore()}
	watcher, err := flags.New(s, flags.WithFlags(streaming), flags.WithPollInterval(time.Hour), flags.WithMaxStaleness(time.Hour))
	require.NoError(t, err)
	require.NoError(t, watcher.Start(ctx))
	defer func() { assert.NoError(t, watcher.Close(ctx)) }()
	require.Eventually(t, s.subscribed, 5*time.Second, 10*time.Millisecond, "the subscription is retried")

	// Another replica (not subscribed itself) toggles through the store.
	other, err := flags.New(s, flags.WithFlags(streaming))
	require.NoError(t, err)
	_, err = other.Toggle(ctx, "llm.streaming", true, flags.Change{By: "ops"})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return watcher.Enabled("llm.streaming", "", false) }, time.Second, 5*time.Millisecond)
}
