package streamauth_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening/streamauth"
)

// fakeBus is a Broadcaster that also carries events, recording them.
type fakeBus struct {
	mu     sync.Mutex
	events []streamauth.Event
	to     []string
	err    error
}

func (b *fakeBus) BroadcastRevoke(context.Context, streamauth.Selector) error { return nil }

func (b *fakeBus) BroadcastEvent(_ context.Context, tenantID string, ev streamauth.Event) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.events = append(b.events, ev)
	b.to = append(b.to, tenantID)
	return b.err
}

// Publish and Broadcast forward every event through a Broadcaster that
// carries events, once each; the Local forms never do.
func TestPublishForwardsThroughBroadcaster(t *testing.T) {
	bus := &fakeBus{}
	reg := newRegistry(t, streamauth.WithBroadcaster(bus))
	ctx := context.Background()

	n, err := reg.Publish(ctx, "acme", streamauth.Event{Type: "order.created"})
	require.NoError(t, err)
	assert.Zero(t, n)
	_, err = reg.Broadcast(ctx, streamauth.Event{Type: "notice"})
	require.NoError(t, err)
	reg.PublishLocal("acme", streamauth.Event{Type: "local"})
	reg.BroadcastLocal(streamauth.Event{Type: "local"})

	require.Len(t, bus.events, 2)
	assert.Equal(t, []string{"acme", ""}, bus.to)
	assert.Equal(t, "order.created", bus.events[0].Type)
	assert.Equal(t, "acme", bus.events[0].Tenant)
	assert.Equal(t, "notice", bus.events[1].Type)

	bus.err = errors.New("redis down")
	_, err = reg.Publish(ctx, "acme", streamauth.Event{Type: "x"})
	assert.ErrorContains(t, err, "redis down", "a failed forward is reported")
}

// A Broadcaster that carries only revocations leaves Publish local.
func TestPublishWithRevocationOnlyBroadcaster(t *testing.T) {
	reg := newRegistry(t, streamauth.WithBroadcaster(revokeOnly{}))
	_, err := reg.Publish(context.Background(), "acme", streamauth.Event{Type: "x"})
	assert.NoError(t, err)
}

type revokeOnly struct{}

func (revokeOnly) BroadcastRevoke(context.Context, streamauth.Selector) error { return nil }

// TestEventsPublishedBeforeTheHandlerReadsArrive: an event published to a
// registered stream before its handler has called Events (ForwardSSE
// starts a moment after registration) is queued, not lost.
func TestEventsPublishedBeforeTheHandlerReadsArrive(t *testing.T) {
	auth := newAuth(t)
	reg := newRegistry(t)
	registered, published := make(chan struct{}), make(chan struct{})
	h, err := streamauth.SSE(auth, reg, streamauth.SSEHandlerFunc(func(ctx context.Context, s *streamauth.SSEStream) error {
		close(registered)
		<-published // the handler is slow to start reading
		return streamauth.ForwardSSE.ServeSSE(ctx, s)
	}))
	require.NoError(t, err)
	srv := serve(t, h)
	c := openSSE(t, httpClient(t), srv.URL, token(t, auth, "alice", "acme", time.Now().Add(time.Minute)))
	<-registered
	n := reg.PublishLocal("acme", streamauth.Event{Type: "order.created", Data: []byte(`"o1"`)})
	m := reg.BroadcastLocal(streamauth.Event{Type: "notice", Data: []byte(`"n1"`)})
	close(published)
	assert.Equal(t, 1, n, "queued for the registered stream")
	assert.Equal(t, 1, m, "queued for the registered stream")
	c.until(t, "event: order.created")
	c.until(t, "event: notice")
}
