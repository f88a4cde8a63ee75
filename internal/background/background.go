// Package background runs the kit's one-goroutine loops (sweepers, key
// ring refreshers) with the lifecycle every package uses: Start runs the loop
// until its context ends or Stop is called; Stop cancels it and waits.
package background

import (
	"context"
	"errors"
	"sync"
)

// ErrStarted is returned by a second Start.
var ErrStarted = errors.New("already started")

// Loop is one background goroutine. The zero value is ready to use; a Loop
// must not be copied after first use.
type Loop struct {
	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
}

// Start runs fn in a goroutine on a child of ctx. A second Start returns
// ErrStarted, even after Stop: a Loop runs at most once.
func (l *Loop) Start(ctx context.Context, fn func(context.Context)) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done != nil {
		return ErrStarted
	}
	ctx, cancel := context.WithCancel(ctx)
	l.cancel, l.done = cancel, make(chan struct{})
	go func(done chan struct{}) {
		defer close(done)
		fn(ctx)
	}(l.done)
	return nil
}

// Stop cancels the loop and waits for fn to return, or for ctx to end (then
// it returns ctx's error and the loop finishes on its own). It is safe
// without Start and more than once.
func (l *Loop) Stop(ctx context.Context) error {
	l.mu.Lock()
	cancel, done := l.cancel, l.done
	l.mu.Unlock()
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
