// Package redisbus carries streamauth revocations between replicas over
// Redis pub/sub, so that a Registry.Revoke on one replica drops the matching
// streams on every replica.
//
//	bus, _ := redisbus.New(rdb, redisbus.WithPrefix("myapp:"), redisbus.WithLogger(log))
//	reg, _ := streamauth.NewRegistry(streamauth.WithBroadcaster(bus))
//	if err := bus.Start(ctx, reg); err != nil { ... }
//	defer bus.Close(ctx)
//
// The bus carries stream events the same way: Registry.Publish and
// Registry.Broadcast deliver to the local streams and send the event through
// the bus (Bus.BroadcastEvent), and every other replica's registry (the
// Revoker given to Start, when it is also an EventSink) delivers it once to
// its streams with PublishLocal or BroadcastLocal, which do not forward it
// again.
//
// Each Bus has a random origin id and ignores its own messages (the local
// registry already dropped its streams). A lost Redis connection is logged
// and re-established with backoff; the subscription is restored on
// reconnect. Pub/sub is fire-and-forget: a revocation published while a
// replica is disconnected does not reach that replica, so keep credentials
// short-lived (the registry still drops every stream at its expiry).
package redisbus
