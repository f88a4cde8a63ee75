package previewsec

import (
	"context"
	"errors"
	"sync"
)

// background is the one goroutine of a KeyRing or RevocationList: start
// runs it until its context ends or stop is called, stop cancels it and
// waits.
type background struct {
	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
}

// start runs loop in a goroutine on a child of ctx. A second start is an
// error naming what.
func (b *background) start(ctx context.Context, what string, loop func(context.Context)) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done != nil {
		return errors.New("previewsec: " + what + " already started")
	}
	ctx, cancel := context.WithCancel(ctx)
	b.cancel, b.done = cancel, make(chan struct{})
	go func(done chan struct{}) {
		defer close(done)
		loop(ctx)
	}(b.done)
	return nil
}

// stop cancels the loop and waits for it, or for ctx to end. It is safe
// without start and more than once.
func (b *background) stop(ctx context.Context) error {
	b.mu.Lock()
	cancel, done := b.cancel, b.done
	b.mu.Unlock()
	if cancel == nil {
		return nil
	}
	cancel()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
