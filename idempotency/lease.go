package idempotency

import (
	"context"
	"time"

	"github.com/systembuilderhub/hardening/internal/background"
)

// keepLease renews the lease of claim every renewal interval until the
// returned stop is called, which waits for the renewal goroutine to end.
// Call stop when the handler returns, before Complete or Release.
//
// The renewals run on a context detached from the request's cancellation
// (its values are kept): a client that disconnects does not stop a
// handler that keeps running, so it must not free its key either. A
// renewal error (the store is down) is logged and tried again at the next
// tick; the lease then lapses only if renewals keep failing for a whole
// lock timeout. A renewal that reports the lease lost (another request
// took the key over) is logged and counted, and renewing stops; the
// handler is not interrupted, and its Complete will be fenced.
func (m *Middleware) keepLease(ctx context.Context, claim ClaimRequest) (stop func()) {
	var loop background.Loop
	_ = loop.Start(context.WithoutCancel(ctx), func(ctx context.Context) { m.renewLoop(ctx, claim) })
	return func() { _ = loop.Stop(context.Background()) }
}

func (m *Middleware) renewLoop(ctx context.Context, claim ClaimRequest) {
	t := time.NewTicker(m.cfg.renewInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !m.renew(ctx, claim) {
			return
		}
	}
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
