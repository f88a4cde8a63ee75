package background_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/systembuilderhub/hardening/internal/background"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestStartStop(t *testing.T) {
	var l background.Loop
	require.NoError(t, l.Stop(context.Background()), "Stop without Start is harmless")
	var ran atomic.Bool
	require.NoError(t, l.Start(context.Background(), func(ctx context.Context) {
		ran.Store(true)
		<-ctx.Done()
	}))
	assert.ErrorIs(t, l.Start(context.Background(), func(context.Context) {}), background.ErrStarted)
	require.NoError(t, l.Stop(context.Background()))
	assert.True(t, ran.Load())
	require.NoError(t, l.Stop(context.Background()), "a second Stop is harmless")
	assert.ErrorIs(t, l.Start(context.Background(), func(context.Context) {}), background.ErrStarted, "a Loop runs once")
}

func TestStartContextEndsLoop(t *testing.T) {
	var l background.Loop
	ctx, cancel := context.WithCancel(context.Background())
	ended := make(chan struct{})
	require.NoError(t, l.Start(ctx, func(ctx context.Context) { <-ctx.Done(); close(ended) }))
	cancel()
	<-ended
	require.NoError(t, l.Stop(context.Background()))
}

func TestStopGivesUpWithItsContext(t *testing.T) {
	var l background.Loop
	release := make(chan struct{})
	require.NoError(t, l.Start(context.Background(), func(context.Context) { <-release }))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	assert.ErrorIs(t, l.Stop(ctx), context.DeadlineExceeded, "the loop ignores cancellation")
	close(release)
	require.NoError(t, l.Stop(context.Background()))
}
