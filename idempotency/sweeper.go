package idempotency

import (
	"context"
	"fmt"
	"time"
)

// Start starts the background loop that, every sweep interval, deletes
// expired records in batches (when the store implements Sweeper) and
// refreshes the stored-keys gauges (when it implements StatsReader). It
// runs until Close or until ctx is cancelled. Starting twice is an error.
// Stores with neither ability (Redis expires its keys itself) need no
// Start, but calling it is harmless.
func (m *Middleware) Start(ctx context.Context) error {
	if err := m.sweeper.Start(ctx, m.loop); err != nil {
		return fmt.Errorf("idempotency: sweeper %w", err)
	}
	return nil
}

// Close stops the sweeper started by Start and waits for it, or for ctx.
// It is safe to call without Start and more than once.
func (m *Middleware) Close(ctx context.Context) error {
	return m.sweeper.Stop(ctx)
}

func (m *Middleware) loop(ctx context.Context) {
	t := time.NewTicker(m.cfg.sweepInterval)
	defer t.Stop()
	for {
		if _, err := m.Sweep(ctx); err != nil && ctx.Err() == nil {
			m.log.ErrorContext(ctx, "idempotency sweep failed", "error", err)
		}
		m.refreshStats(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Sweep runs one sweep now: it deletes expired records, one batch per
// store call, until a batch comes back short, and returns how many it
// deleted. It does nothing for stores that do not implement Sweeper.
func (m *Middleware) Sweep(ctx context.Context) (int, error) {
	sw, ok := m.store.(Sweeper)
	if !ok {
		return 0, nil
	}
	now := m.cfg.now()
	total := 0
	for ctx.Err() == nil {
		n, err := sw.Sweep(ctx, now, m.cfg.sweepBatch)
		total += n
		m.metrics.swept.Add(float64(n))
		if err != nil {
			return total, fmt.Errorf("idempotency: sweep: %w", err)
		}
		if n < m.cfg.sweepBatch {
			break
		}
		// Let other writers take the lock between batches.
		select {
		case <-ctx.Done():
		case <-time.After(sweepPause):
		}
	}
	m.mu.Lock()
	m.lastSweep, m.lastDel = now, total
	m.mu.Unlock()
	if total > 0 {
		m.log.InfoContext(ctx, "idempotency records swept", "deleted", total)
	}
	return total, nil
}

// sweepPause separates two batches of one sweep.
const sweepPause = 5 * time.Millisecond

// refreshStats updates the gauges after a sweep. Stores without a sweeper
// (Redis) are counted only on Status calls: counting them means a scan.
func (m *Middleware) refreshStats(ctx context.Context) {
	if _, ok := m.store.(Sweeper); !ok {
		return
	}
	sr, ok := m.store.(StatsReader)
	if !ok {
		return
	}
	st, err := sr.Stats(ctx, m.cfg.now())
	if err != nil {
		return
	}
	m.metrics.keys.Set(float64(st.Keys))
	m.metrics.inFlight.Set(float64(st.InFlight))
}

// Status is a snapshot of the middleware and its store, for admin
// endpoints. Its JSON form is the hub's /api/v1/idempotency/status body.
type Status struct {
	// Store is the store's kind ("memory", "sqlite", "redis"), from its
	// String method; "custom" otherwise.
	Store              string     `json:"store"`
	TTLSeconds         int64      `json:"ttl_seconds"`
	LockTimeoutSeconds int64      `json:"lock_timeout_seconds"`
	Keys               int64      `json:"keys"`
	InFlight           int64      `json:"in_flight"`
	LastSweepAt        *time.Time `json:"last_sweep_at"`
	LastSweepDeleted   int        `json:"last_sweep_deleted"`
}

// Status reads the store's counts (when it implements StatsReader; zero
// otherwise) and the last sweep's result. It also refreshes the gauges.
func (m *Middleware) Status(ctx context.Context) (Status, error) {
	st := Status{
		Store:              "custom",
		TTLSeconds:         int64(m.cfg.ttl / time.Second),
		LockTimeoutSeconds: int64(m.cfg.lockTimeout / time.Second),
	}
	if s, ok := m.store.(fmt.Stringer); ok {
		st.Store = s.String()
	}
	if sr, ok := m.store.(StatsReader); ok {
		c, err := sr.Stats(ctx, m.cfg.now())
		if err != nil {
			return st, fmt.Errorf("idempotency: stats: %w", err)
		}
		st.Keys, st.InFlight = c.Keys, c.InFlight
		m.metrics.keys.Set(float64(c.Keys))
		m.metrics.inFlight.Set(float64(c.InFlight))
	}
	m.mu.Lock()
	if !m.lastSweep.IsZero() {
		t := m.lastSweep.UTC()
		st.LastSweepAt = &t
	}
	st.LastSweepDeleted = m.lastDel
	m.mu.Unlock()
	return st, nil
}
