package idempotency

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening"
)

// downOnComplete is a memory store whose Complete always fails.
type downOnComplete struct {
	*MemoryStore
	completes atomic.Int64
}

func (s *downOnComplete) Complete(context.Context, CompleteRequest) (bool, error) {
	s.completes.Add(1)
	return false, errors.New("store down")
}

// TestCompleteBackoffEndsWithRequest: with an hour of back-off between the
// tries to store a response, a request whose context has ended does not
// wait: the tries follow at once and the request returns.
func TestCompleteBackoffEndsWithRequest(t *testing.T) {
	t.Parallel()
	s := &downOnComplete{MemoryStore: NewMemoryStore()}
	m, err := New(s)
	require.NoError(t, err)
	m.cfg.completeBackoff = time.Hour
	ctx, cancel := context.WithCancel(context.Background())
	h := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cancel() // the client goes away while the operation runs
		w.WriteHeader(http.StatusCreated)
	}))
	ctx = hardening.WithCaller(ctx, hardening.Caller{Subject: "alice"})
	req := httptest.NewRequest(http.MethodPost, "/things", strings.NewReader("b")).WithContext(ctx)
	req.Header.Set(HeaderName, "k")
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.ServeHTTP(httptest.NewRecorder(), req)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the back-off outlived the request's context")
	}
	assert.Equal(t, int64(completeAttempts), s.completes.Load(), "every try is still made")
}

func TestSleep(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	done := make(chan struct{})
	go func() { sleep(ctx, time.Hour); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("sleep ignored its context")
	}
	start := time.Now()
	sleep(context.Background(), time.Millisecond)
	assert.GreaterOrEqual(t, time.Since(start), time.Millisecond)
}
