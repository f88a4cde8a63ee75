package idempotency

import (
	"context"
	"sync"
	"time"
)

// keepLease renews the lease of claim every renewal interval until the
// returned keeper's stop is called, which waits for a renewal in progress
// to end. Call stop when the handler returns, before Complete or Release.
//
// The renewals run on a context detached from the request's cancellation
// (its values are kept): a client that disconnects does not stop a
// handler that keeps running, so it must not free its key either. A
// renewal error (the store is down) is logged and tried again at the next
// tick; the lease then lapses only if renewals keep failing for a whole
// lock timeout. A renewal that reports the lease lost (another request
// took the key over) is logged and counted, and renewing stops; the
// handler is not interrupted, and its Complete will be fenced.
//
// Renewals run on a timer (time.AfterFunc): no goroutine and no renewal
// context exist until the first one is due, so a handler faster than the
// renewal interval costs one timer. ctx must already be detached from the
// request's cancellation (context.WithoutCancel).
func (m *Middleware) keepLease(ctx context.Context, claim ClaimRequest) *leaseKeeper {
	k := &leaseKeeper{m: m, claim: claim, parent: ctx}
	k.mu.Lock() // tick reads k.timer
	k.timer = time.AfterFunc(m.cfg.renewInterval, k.tick)
	k.mu.Unlock()
	return k
}

// leaseKeeper renews one lease from its timer's goroutine.
type leaseKeeper struct {
	m       *Middleware
	claim   ClaimRequest
	parent  context.Context // detached from the request's cancellation
	ctx     context.Context // of the renewals, made by the first tick; ends with stop
	cancel  context.CancelFunc
	timer   *time.Timer
	mu      sync.Mutex // guards stopped, timer, ctx and cancel; orders Add before Wait
	stopped bool
	running sync.WaitGroup // the renewal in progress
}

func (k *leaseKeeper) tick() {
	k.mu.Lock()
	if k.stopped {
		k.mu.Unlock()
		return
	}
	if k.ctx == nil {
		k.ctx, k.cancel = context.WithCancel(k.parent)
	}
	ctx := k.ctx
	k.running.Add(1)
	k.mu.Unlock()
	defer k.running.Done()
	if !k.m.renew(ctx, k.claim) {
		return
	}
	k.mu.Lock()
	if !k.stopped {
		k.timer.Reset(k.m.cfg.renewInterval)
	}
	k.mu.Unlock()
}

// stop ends the renewals: no new one starts, the one in progress is
// cancelled and waited for.
func (k *leaseKeeper) stop() {
	k.mu.Lock()
	k.stopped = true
	cancel := k.cancel
	k.mu.Unlock()
	k.timer.Stop()
	if cancel != nil {
		cancel()
	}
	k.running.Wait()
}

// renew makes one renewal; it reports false when renewing must stop.
func (m *Middleware) renew(ctx context.Context, claim ClaimRequest) bool {
	// A call slower than a lease cannot keep the lease anyway.
	callCtx, cancel := context.WithTimeout(ctx, m.cfg.lockTimeout)
	defer cancel()
	ok, err := m.store.Renew(callCtx, RenewRequest{Key: claim.Key, Owner: claim.Owner, Now: m.cfg.now(), LockTimeout: m.cfg.lockTimeout})
	switch {
	case err != nil && ctx.Err() != nil: // stopped mid-call: the handler returned
		return false
	case err != nil:
		m.metrics.renewal[RenewError].Inc()
		m.log.WarnContext(ctx, "idempotency lease renewal failed; retrying at the next tick", "error", err)
		return true
	case !ok:
		m.metrics.renewal[RenewLost].Inc()
		m.log.WarnContext(ctx, "idempotency lease lost while the handler runs: another request took the key over")
		return false
	}
	m.metrics.renewal[RenewRenewed].Inc()
	return true
}
