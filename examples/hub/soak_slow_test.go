package main

import (
	"context"
	"fmt"
	mrand "math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// The soak's slow-handler case: a fifth hub process runs every echo for
// soakSlowEcho, three lock timeouts (IDEMPOTENCY_LOCK_TIMEOUT=soakLock on
// every process), while the same key is retried on the other processes.
const (
	soakLock     = 1500 * time.Millisecond
	soakSlowEcho = 3 * soakLock
)

// slowRound is one slow echo and the retries of its key sent while it ran.
type slowRound struct {
	key     string
	first   result
	retries []result
	// lastConflict is when, after the slow echo was sent, a retry last
	// got 409.
	lastConflict time.Duration
}

// slowEchoes sends one echo at a time with a fresh key to slow, and once
// it runs there (its execution counter moved) retries the key on a random
// process of hubs every 100 ms until it answers. It starts a new echo
// while ctx leaves time for it to finish (the first one in any case).
// record sees every answer.
func slowEchoes(ctx context.Context, c *hubClient, slow *hubProc, hubs []*hubProc, tok string, record func(key string, r result)) []slowRound {
	bg := context.Background()
	var rounds []slowRound
	for len(rounds) == 0 || roomFor(ctx, soakSlowEcho) {
		ran, err := c.metric(slow.addr, "hub_echo_executions_total")
		if err != nil {
			return append(rounds, slowRound{first: result{err: err}})
		}
		key := "slow-" + randHex(8)
		body := fmt.Sprintf(`{"key":%q}`, key)
		send := func(h *hubProc) result {
			return c.do(bg, "POST", "http://"+h.addr+"/api/v1/echo", tok, body, "Idempotency-Key", key)
		}
		first := make(chan result, 1)
		start := time.Now()
		go func() { first <- send(slow) }()
		round := slowRound{key: key}
		for running := false; round.first.status == 0 && round.first.err == nil; {
			select {
			case round.first = <-first:
				continue
			case <-time.After(100 * time.Millisecond):
			}
			if !running {
				v, err := c.metric(slow.addr, "hub_echo_executions_total")
				running = err == nil && v > ran
				continue
			}
			r := send(hubs[mrand.IntN(len(hubs))])
			record(key, r)
			round.retries = append(round.retries, r)
			if r.status == 409 {
				round.lastConflict = time.Since(start)
			}
		}
		record(key, round.first)
		rounds = append(rounds, round)
	}
	return rounds
}

// roomFor reports whether ctx is live and its deadline (if any) is at
// least d away.
func roomFor(ctx context.Context, d time.Duration) bool {
	deadline, ok := ctx.Deadline()
	return ctx.Err() == nil && (!ok || time.Until(deadline) >= d)
}

// checkSlowRounds: each slow echo answered 201, every retry meanwhile was
// 409 (or, at the very end, the replay of the same echo), and retries kept
// getting 409 after the first lease would have lapsed.
func checkSlowRounds(t *testing.T, rounds []slowRound) {
	t.Helper()
	assert.NotEmpty(t, rounds)
	for _, rd := range rounds {
		if !assert.True(t, rd.first.status == 201 && !rd.first.replay(), "slow echo %s: %v", rd.key, rd.first) {
			continue
		}
		for _, r := range rd.retries {
			ok := (r.status == 409 && r.str("reason") == "idempotency_key_in_flight") ||
				(r.status == 201 && r.replay() && r.str("id") == rd.first.str("id"))
			assert.True(t, ok, "retry of slow echo %s while it ran: %v", rd.key, r)
		}
		assert.Greater(t, rd.lastConflict, 2*soakLock, "slow echo %s: retries met its renewed lease", rd.key)
	}
}
