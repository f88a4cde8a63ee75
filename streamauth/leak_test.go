package streamauth_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening/streamauth"
)

// TestNoLeaksAfterManyStreams opens and closes 10,000 SSE streams (in
// concurrent batches, ended by revocation, by the client, by the handler)
// and some WebSockets, then checks that no stream, timer or goroutine is
// left (goleak checks again at exit).
func TestNoLeaksAfterManyStreams(t *testing.T) {
	total, batch := 10_000, 250
	if testing.Short() {
		total = 1000
	}
	auth := newAuth(t)
	reg := newRegistry(t, streamauth.WithKeepAlive(-1))
	hh, err := streamauth.SSE(auth, reg, streamauth.SSEHandlerFunc(func(ctx context.Context, s *streamauth.SSEStream) error {
		if s.Request().URL.Query().Get("mode") == "complete" {
			return s.Send(streamauth.Event{Type: "bye"})
		}
		return streamauth.ForwardSSE.ServeSSE(ctx, s)
	}))
	require.NoError(t, err)
	srv := serve(t, hh)
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: batch}}
	base := runtime.NumGoroutine()
	exp := time.Now().Add(time.Hour)

	for b := 0; b < total/batch; b++ {
		tenant := fmt.Sprintf("t%d", b)
		mode := []string{"revoke", "complete", "revoke", "client"}[b%4]
		tok := token(t, auth, "u", tenant, exp)
		var wg sync.WaitGroup
		bodies := make(chan io.ReadCloser, batch)
		cancels := make(chan context.CancelFunc, batch)
		for i := 0; i < batch; i++ {
			wg.Go(func() {
				ctx, cancel := context.WithCancel(context.Background())
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"?mode="+mode, nil)
				req.Header.Set("Authorization", "Bearer "+tok)
				resp, err := c.Do(req)
				if !assert.NoError(t, err) {
					cancel()
					return
				}
				assert.Equal(t, http.StatusOK, resp.StatusCode)
				bodies <- resp.Body
				cancels <- cancel
			})
		}
		wg.Wait()
		close(bodies)
		close(cancels)
		switch mode {
		case "revoke":
			waitFor(t, "batch open", func() bool { return reg.Status().Active == batch })
			n, err := reg.Revoke(context.Background(), streamauth.Selector{Tenant: tenant})
			require.NoError(t, err)
			require.Equal(t, batch, n)
		case "client":
			waitFor(t, "batch open", func() bool { return reg.Status().Active == batch })
			for cancel := range cancels {
				cancel()
			}
		}
		for body := range bodies {
			_, _ = io.Copy(io.Discard, body)
			_ = body.Close()
		}
		for cancel := range cancels {
			cancel()
		}
		waitFor(t, "batch closed", func() bool { return reg.Status().Active == 0 })
	}
	c.CloseIdleConnections()

	st := reg.Status()
	assert.Zero(t, st.Active)
	assert.Zero(t, reg.ArmedTimers(), "expiry timers left armed")
	var ended uint64
	for _, n := range st.ByReason {
		ended += n
	}
	assert.EqualValues(t, total, ended)
	waitFor(t, "goroutines back to baseline", func() bool { return runtime.NumGoroutine() <= base+2 })
}
