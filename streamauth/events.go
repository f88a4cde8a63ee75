package streamauth

import (
	"context"
	"fmt"
	"log/slog"
)

// EventBroadcaster carries stream events to the other replicas. When the
// Broadcaster given to WithBroadcaster also implements it (as
// streamauth/redisbus does), Registry.Publish and Registry.Broadcast send
// every event through it after delivering it locally. tenantID is empty for
// a Broadcast. The receiving replica delivers the event with PublishLocal
// or BroadcastLocal, which do not forward it again.
type EventBroadcaster interface {
	BroadcastEvent(ctx context.Context, tenantID string, ev Event) error
}

// Publish delivers ev to every live stream of tenantID on this replica
// (ev.Tenant is set to tenantID) and, when the Broadcaster implements
// EventBroadcaster, to the other replicas, whose registries deliver it to
// their streams of tenantID once. It returns the number of local streams
// the event was queued for; a stream whose buffer is full misses it. The
// local delivery happens regardless of the error, which means the event did
// not reach the other replicas. Handlers receive events with
// SSEStream.Events or WSConn.Events.
func (r *Registry) Publish(ctx context.Context, tenantID string, ev Event) (int, error) {
	n := r.PublishLocal(tenantID, ev)
	return n, r.forward(ctx, tenantID, ev)
}

// Broadcast delivers ev to every live stream, each as an event of its own
// tenant (for tenant-neutral events), on this replica and, like Publish,
// on the other replicas. It returns the number of local streams the event
// was queued for. Per-replica events such as a heartbeat use
// BroadcastLocal, so that a stream does not get one from every replica.
func (r *Registry) Broadcast(ctx context.Context, ev Event) (int, error) {
	n := r.BroadcastLocal(ev)
	return n, r.forward(ctx, "", ev)
}

// PublishLocal is Publish on this replica only: it never forwards ev.
// Broadcasters call it for events from other replicas.
func (r *Registry) PublishLocal(tenantID string, ev Event) int {
	ev.Tenant = tenantID
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for s := range r.byTenant[tenantID] {
		if s.info.Tenant != tenantID || s.done {
			continue
		}
		select {
		case s.eventsLocked() <- ev:
			n++
		default:
		}
	}
	return n
}

// BroadcastLocal is Broadcast on this replica only: it never forwards ev.
// Broadcasters call it for events from other replicas.
func (r *Registry) BroadcastLocal(ev Event) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, s := range r.streams {
		if s.done {
			continue
		}
		e := ev
		e.Tenant = s.info.Tenant
		select {
		case s.eventsLocked() <- e:
			n++
		default:
		}
	}
	return n
}

// forward sends ev to the other replicas when the Broadcaster carries
// events; tenantID is empty for a Broadcast.
func (r *Registry) forward(ctx context.Context, tenantID string, ev Event) error {
	eb, ok := r.cfg.bus.(EventBroadcaster)
	if !ok {
		return nil
	}
	ev.Tenant = tenantID
	if err := eb.BroadcastEvent(ctx, tenantID, ev); err != nil {
		r.cfg.log.LogAttrs(ctx, slog.LevelWarn, "streamauth: event broadcast failed",
			slog.String("event", "event_broadcast_failed"), slog.String("type", ev.Type), slog.String("error", err.Error()))
		return fmt.Errorf("streamauth: broadcast event: %w", err)
	}
	return nil
}
