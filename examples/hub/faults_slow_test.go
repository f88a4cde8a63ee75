package main

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFaultSlowHandler(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"sqlite", "redis", "postgres"} {
		t.Run(mode, func(t *testing.T) { runSlowHandler(t, mode) })
	}
}

// runSlowHandler: hub A runs an echo for three lock timeouts
// (HUB_ECHO_DELAY) while retries of its key arrive at hub B. A renews its
// lease, so every retry is 409 until A answers, then the replay: the echo
// ran once across both processes.
func runSlowHandler(t *testing.T, mode string) {
	const lockTimeout = time.Second
	env := []string{
		"HUB_AUTH_SECRET=" + testAuthSecret,
		"DATABASE_URL=sqlite:///" + filepath.Join(t.TempDir(), "shared.db"),
		"IDEMPOTENCY_LOCK_TIMEOUT=" + lockTimeout.String(),
	}
	if mode == "redis" {
		srv := testRedis(t)
		env = append(env, "REDIS_URL="+srv.URL, "HUB_REDIS_PREFIX="+srv.Prefix)
	}
	if mode == "postgres" {
		env = append(env, "DATABASE_URL="+testPostgres(t).URL) // the last value wins
	}
	a := startHub(t, append(slices.Clone(env), "HUB_ECHO_DELAY="+(3*lockTimeout).String())...)
	b := startHub(t, env...)
	tok := testToken(t, "u1", "slow-"+randHex(4), false)
	c := newHubClient(t)
	bg := context.Background()
	const body = `{"n":1}`
	echo := func(h *hubProc) result {
		return c.do(bg, "POST", "http://"+h.addr+"/api/v1/echo", tok, body, "Idempotency-Key", "slow-1")
	}

	first := make(chan result, 1)
	go func() { first <- echo(a) }()
	start := time.Now()
	eventually(t, 10*time.Second, "A runs the slow echo", func() (bool, string) {
		v, err := c.metric(a.addr, "hub_echo_executions_total")
		return err == nil && v == 1, fmt.Sprint(v, err)
	})
	conflicts, lastConflict := 0, time.Duration(0)
	var got result
	for waiting := true; waiting; {
		select {
		case got = <-first:
			waiting = false
			continue
		default:
		}
		r := echo(b)
		switch {
		case r.status == 409 && r.str("reason") == "idempotency_key_in_flight":
			conflicts++
			lastConflict = time.Since(start)
		case r.status == 201 && r.replay():
		default:
			t.Errorf("retry on B %s after A's claim: %v", time.Since(start).Round(time.Millisecond), r)
		}
		time.Sleep(100 * time.Millisecond)
	}
	require.Equal(t, 201, got.status, "%v", got)
	assert.False(t, got.replay())
	again := echo(b)
	assert.True(t, again.status == 201 && again.replay(), "%v", again)
	assert.Equal(t, got.str("id"), again.str("id"))
	assert.Greater(t, lastConflict, 2*lockTimeout, "B's retries met A's renewed lease")

	var executions float64
	for _, h := range []*hubProc{a, b} {
		v, err := c.metric(h.addr, "hub_echo_executions_total")
		require.NoError(t, err)
		executions += v
	}
	assert.Equal(t, 1.0, executions, "the slow echo ran once across both processes")
	t.Logf("%s: echo ran %s on A (lock timeout %s); %d retries on B answered 409 over %s, then the replay; executions %v",
		mode, got.dur.Round(time.Millisecond), lockTimeout, conflicts, lastConflict.Round(time.Millisecond), executions)
}
