package streamauth

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening"
)

// TestRegistryConcurrentUse opens, publishes to, revokes, cleans up and
// drops streams from many goroutines at once (run it with -race).
func TestRegistryConcurrentUse(t *testing.T) {
	reg, err := NewRegistry(WithMaxStreamsPerUser(1000), WithRevocationMemory(-1))
	require.NoError(t, err)
	const workers, per = 8, 200
	var wg sync.WaitGroup
	var opened atomic.Int64 // a credential can expire before open on a loaded machine
	for w := 0; w < workers; w++ {
		wg.Go(func() {
			for i := 0; i < per; i++ {
				p := hardening.Caller{Subject: fmt.Sprintf("u%d", i%5), Tenant: fmt.Sprintf("t%d", w%3),
					ExpiresAt: time.Now().Add(time.Duration(i%3) * time.Millisecond).Add(time.Millisecond)}
				s, ctx, err := reg.open(context.Background(), KindSSE, p)
				if err != nil {
					continue // already expired
				}
				opened.Add(1)
				_ = s.eventsChan()
				_, _ = reg.Publish(context.Background(), p.Tenant, Event{Type: "x"})
				_, _ = reg.Broadcast(context.Background(), Event{Type: "y"})
				switch i % 4 {
				case 0:
					_, _ = reg.Revoke(ctx, Selector{Subject: p.Subject})
				case 1:
					_, _ = reg.Cleanup(ctx)
				case 2:
					s.extend(time.Now().Add(time.Millisecond))
				}
				<-ctx.Done()
				s.drop(ReasonCompleted)
				s.finish()
				_ = reg.Status()
			}
		})
	}
	wg.Wait()
	st := reg.Status()
	assert.Zero(t, st.Active)
	var total uint64
	for _, n := range st.ByReason {
		total += n
	}
	assert.Positive(t, opened.Load())
	assert.EqualValues(t, opened.Load(), total, "every opened stream ended with one reason")
	assert.Zero(t, reg.ArmedTimers())
	require.NoError(t, reg.Close(context.Background()))
}
