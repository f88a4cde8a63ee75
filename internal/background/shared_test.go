package background

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

func TestSharedReadFinished(t *testing.T) {
	boom := errors.New("boom")
	r := StartRead(context.Background(), time.Minute, func(context.Context) error { return boom })
	if o, err := r.Wait(context.Background()); o != Finished || !errors.Is(err, boom) {
		t.Fatalf("got %v %v", o, err)
	}
	if err := r.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	var nilRead *SharedRead
	if err := nilRead.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestSharedReadOutlivesItsStarter: the starter's context ending does not
// cancel the read; another waiter still gets its result.
func TestSharedReadOutlivesItsStarter(t *testing.T) {
	starter, cancel := context.WithCancel(context.Background())
	release := make(chan struct{})
	var cancelled atomic.Bool
	r := StartRead(starter, time.Minute, func(ctx context.Context) error {
		<-release
		cancelled.Store(ctx.Err() != nil)
		return nil
	})
	cancel()
	if o, err := r.Wait(starter); o != Abandoned || !errors.Is(err, context.Canceled) {
		t.Fatalf("starter: %v %v", o, err)
	}
	close(release)
	if o, err := r.Wait(context.Background()); o != Finished || err != nil || cancelled.Load() {
		t.Fatalf("other waiter: %v %v, read cancelled %v", o, err, cancelled.Load())
	}
}

// TestSharedReadTimesOut: a hung read releases its waiters at its timeout
// and keeps them released at once until it returns.
func TestSharedReadTimesOut(t *testing.T) {
	release := make(chan struct{})
	r := StartRead(context.Background(), 20*time.Millisecond, func(ctx context.Context) error {
		<-release
		return nil
	})
	if o, err := r.Wait(context.Background()); o != TimedOut || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v %v", o, err)
	}
	if o, _ := r.Wait(context.Background()); o != TimedOut {
		t.Fatalf("a later waiter got %v", o)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := r.Drain(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("drain of a hung read: %v", err)
	}
	close(release)
	if err := r.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if o, err := r.Wait(context.Background()); o != Finished || err != nil {
		t.Fatalf("after it returned: %v %v", o, err)
	}
}

// TestSharedReadNeverTimesOutAfterFinishing: a read that returned is
// Finished for every waiter, however the goroutines interleave (its
// context is released only after its waiters are).
func TestSharedReadNeverTimesOutAfterFinishing(t *testing.T) {
	for range 2000 {
		r := StartRead(context.Background(), time.Minute, func(context.Context) error { return nil })
		if o, err := r.Wait(context.Background()); o != Finished || err != nil {
			t.Fatalf("got %v %v", o, err)
		}
	}
}
