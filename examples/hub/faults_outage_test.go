package main

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// outage is what TestFaultRedisOutage and TestFaultPostgresOutage share:
// two hubs on one backend, idempotent echoes with fresh keys on both all
// through the outage, the checks while the backend is down and once it is
// back, and the final check that no key ran twice.
type outage struct {
	t      *testing.T
	hubs   []*hubProc
	c      *hubClient
	tenant string
	tok    string
	admin  string
	stats  *loadStats

	mu  sync.Mutex
	ids map[string]map[string]bool // key -> echo ids answered

	stop context.CancelFunc
	wg   sync.WaitGroup
}

// startOutage starts the load on hubs and lets it run for a second.
func startOutage(t *testing.T, hubs []*hubProc) *outage {
	tenant := "fault-" + randHex(4)
	o := &outage{t: t, hubs: hubs, c: newHubClient(t), tenant: tenant, stats: newLoadStats(), ids: map[string]map[string]bool{},
		tok: testToken(t, "u1", tenant, false), admin: testToken(t, "root", tenant, true)}
	ctx, stop := context.WithCancel(context.Background())
	o.stop = stop
	t.Cleanup(stop)
	for w := range 2 {
		o.wg.Go(func() {
			for n := 0; ctx.Err() == nil; n++ {
				key := fmt.Sprintf("k%d-%d", w, n)
				r := o.c.do(context.Background(), "POST", o.url(n%2, "/api/v1/echo"), o.tok, `{"n":1}`, "Idempotency-Key", key)
				o.stats.record("POST /api/v1/echo", r, 201, 409)
				o.note(key, r)
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
	time.Sleep(time.Second)
	return o
}

func (o *outage) url(i int, path string) string { return "http://" + o.hubs[i].addr + path }

// do sends one request to hub i.
func (o *outage) do(i int, method, path, token, body string, hdr ...string) result {
	return o.c.do(context.Background(), method, o.url(i, path), token, body, hdr...)
}

// note records the echo id of a 201 for key.
func (o *outage) note(key string, r result) {
	if r.status != 201 {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.ids[key] == nil {
		o.ids[key] = map[string]bool{}
	}
	o.ids[key][r.str("id")] = true
}

// echo sends an echo with a fresh key (prefix "d" while down, "u" once
// up: the body is {"n":n} with n from the prefix, see finish).
func (o *outage) echo(i int, prefix string) result {
	key := prefix + "-" + randHex(4)
	r := o.do(i, "POST", "/api/v1/echo", o.tok, `{"n":`+echoN[prefix[:1]]+`}`, "Idempotency-Key", key)
	o.note(key, r)
	return r
}

// echoN is the echo body's n per key prefix: k (the load), d (down), u (up).
var echoN = map[string]string{"k": "1", "d": "2", "u": "3"}

// checkDown checks hub i while the backend is down: every store-backed
// write 503 with its store's reason, whoami still 200, /readyz 503 with
// readyReason.
func (o *outage) checkDown(i int, backend, readyReason string) {
	t := o.t
	eventually(t, 10*time.Second, "echo fails closed while "+backend+" is down", func() (bool, string) {
		r := o.echo(i, "down")
		return isProblem503(r, "idempotency_store_unavailable"), r.String()
	})
	r := o.do(i, "GET", "/api/v1/tenancy/quotas/"+o.tenant, o.tok, "")
	assert.True(t, isProblem503(r, "quota_store_unavailable"), "quotas while %s is down: %v", backend, r)
	r = o.do(i, "POST", "/api/v1/previews", o.tok, `{"system_id":"s"}`)
	assert.True(t, isProblem503(r, "quota_store_unavailable"), "preview while %s is down: %v", backend, r)
	r = o.do(i, "POST", "/api/v1/feature-flags/llm.streaming/toggle", o.admin, `{"enabled":true,"tenant_id":"`+o.tenant+`"}`)
	assert.True(t, isProblem503(r, "flags_unavailable"), "toggle while %s is down: %v", backend, r)
	r = o.do(i, "GET", "/api/v1/whoami", o.tok, "")
	assert.Equal(t, 200, r.status, "whoami needs no backend: %v", r)
	eventually(t, 10*time.Second, "readyz reports "+backend+" down", func() (bool, string) {
		r := o.do(i, "GET", "/readyz", "", "")
		return isProblem503(r, readyReason), r.String()
	})
}

// checkUp waits until hub i writes and is ready again; it returns how
// long the writes took to recover.
func (o *outage) checkUp(i int) time.Duration {
	took := eventually(o.t, 15*time.Second, "echo recovers without restarting the hub", func() (bool, string) {
		r := o.echo(i, "up")
		return r.status == 201, r.String()
	})
	eventually(o.t, 10*time.Second, "readyz recovers", func() (bool, string) {
		r := o.do(i, "GET", "/readyz", "", "")
		return r.status == 200, r.String()
	})
	return took
}

// finish stops the load and resends every key that was answered: each is
// replayed, never run again. A key whose completion was lost with the
// backend stays locked (409) until its lease (IDEMPOTENCY_LOCK_TIMEOUT,
// 30s) expires; finish returns how many, and the executions summed over
// the hubs (checked equal to the keys answered).
func (o *outage) finish() (locked int, executions float64) {
	t := o.t
	o.stop()
	o.wg.Wait()
	o.mu.Lock()
	defer o.mu.Unlock()
	for key := range o.ids {
		r := o.do(1, "POST", "/api/v1/echo", o.tok, `{"n":`+echoN[key[:1]]+`}`, "Idempotency-Key", key)
		switch r.status {
		case 201:
			assert.True(t, r.replay(), "key %s ran again after the outage: %v", key, r)
			o.ids[key][r.str("id")] = true
			assert.Len(t, o.ids[key], 1, "key %s answered with two echo ids", key)
		case 409:
			locked++
		default:
			t.Errorf("retry of %s: %v", key, r)
		}
	}
	for _, h := range o.hubs {
		v, err := o.c.metric(h.addr, "hub_echo_executions_total")
		require.NoError(t, err)
		executions += v
	}
	assert.Equal(t, float64(len(o.ids)), executions, "echo executions = echo ids answered: nothing ran twice")
	assert.Empty(t, o.stats.unexpected)
	assert.Positive(t, o.stats.fail503["idempotency_store_unavailable"], "the load saw the outage")
	for i, h := range o.hubs {
		assertJSONLines(t, fmt.Sprintf("hub %d", i), h.logs())
	}
	return locked, executions
}

// summary is the figures of the run for the test log.
func (o *outage) summary(locked int, executions float64) string {
	return fmt.Sprintf("%d load requests %v, 503s %v; %d keys answered, %d executions, %d keys still locked after a lost completion",
		o.stats.total(), o.stats.counts, o.stats.fail503, len(o.ids), int(executions), locked)
}
