package main

// Postgres stopped and restarted under load. The test cannot stop the
// shared server at POSTGRES_URL, so the hubs reach it through faultProxy,
// a TCP proxy the test controls: stop closes every connection and refuses
// new ones (the database is down), start accepts again (it is back). See
// docs/reliability.md.

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// faultProxy forwards TCP connections from addr to target until stopped.
type faultProxy struct {
	t      *testing.T
	target string
	addr   string

	mu    sync.Mutex
	ln    net.Listener // nil while stopped
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// newFaultProxy starts a proxy to target on a free loopback port; it is
// stopped at cleanup.
func newFaultProxy(t *testing.T, target string) *faultProxy {
	t.Helper()
	p := &faultProxy{t: t, target: target, addr: "127.0.0.1:" + freePort(t), conns: map[net.Conn]struct{}{}}
	p.start()
	t.Cleanup(func() { p.stop(); p.wg.Wait() })
	return p
}

// start accepts connections again on the same address.
func (p *faultProxy) start() {
	p.mu.Lock()
	defer p.mu.Unlock()
	var ln net.Listener
	var err error
	for range 50 { // the port was ours a moment ago
		if ln, err = net.Listen("tcp", p.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	require.NoError(p.t, err, "proxy listen on %s", p.addr)
	p.ln = ln
	p.wg.Go(func() { p.serve(ln) })
}

// stop refuses new connections and closes every open one, both ways.
func (p *faultProxy) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		_ = p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		_ = c.Close()
	}
	clear(p.conns)
}

func (p *faultProxy) serve(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		p.wg.Go(func() { p.pipe(c) })
	}
}

// track registers c, or closes it and reports false when the proxy has
// been stopped meanwhile.
func (p *faultProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln == nil {
		_ = c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *faultProxy) pipe(client net.Conn) {
	if !p.track(client) {
		return
	}
	server, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		_ = client.Close()
		return
	}
	if !p.track(server) {
		_ = client.Close()
		return
	}
	done := make(chan struct{}, 2)
	cp := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		_ = dst.Close()
		_ = src.Close()
		done <- struct{}{}
	}
	go cp(server, client)
	go cp(client, server)
	<-done
	<-done
	p.mu.Lock()
	delete(p.conns, client)
	delete(p.conns, server)
	p.mu.Unlock()
}

// throughProxy returns rawURL with its host replaced by addr.
func throughProxy(t *testing.T, rawURL, addr string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	require.NoError(t, err)
	u.Host = addr
	return u.String()
}

// postgresTarget is the host:port of POSTGRES_URL.
func postgresTarget(t *testing.T, rawURL string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	require.NoError(t, err)
	port := u.Port()
	if port == "" {
		port = "5432"
	}
	return net.JoinHostPort(u.Hostname(), port)
}

// TestFaultPostgresOutage: two hubs on one Postgres schema under load;
// the database goes down (the proxy drops every connection and refuses
// new ones) and comes back. While it is down every write answers 503 with
// the reason the hub uses for that store, /readyz 503 db_unavailable;
// once it is back the hubs recover without a restart; no echo key ran
// twice.
func TestFaultPostgresOutage(t *testing.T) {
	t.Parallel()
	pg := testPostgres(t)
	proxy := newFaultProxy(t, postgresTarget(t, pg.URL))
	env := []string{"HUB_AUTH_SECRET=" + testAuthSecret, "DATABASE_URL=" + throughProxy(t, pg.URL, proxy.addr), "FLAGS_POLL_INTERVAL=200ms"}
	var hubs [2]*hubProc
	for i := range hubs {
		hubs[i] = startHub(t, slices.Clone(env)...)
	}
	url := func(i int, path string) string { return "http://" + hubs[i].addr + path }
	tenant := "fault-" + randHex(4)
	tok := testToken(t, "u1", tenant, false)
	admin := testToken(t, "root", tenant, true)
	c := newHubClient(t)
	stats := newLoadStats()
	bg := context.Background()
	var previews [2]string
	for i := range hubs {
		r := c.do(bg, "POST", url(i, "/api/v1/previews"), tok, `{"system_id":"s"}`)
		require.Equal(t, 201, r.status, "%v", r)
		previews[i] = r.str("preview_id")
	}

	var mu sync.Mutex
	ids := map[string]map[string]bool{} // key -> echo ids answered
	note := func(key string, r result) {
		if r.status == 201 {
			mu.Lock()
			if ids[key] == nil {
				ids[key] = map[string]bool{}
			}
			ids[key][r.str("id")] = true
			mu.Unlock()
		}
	}
	ctx, stopLoad := context.WithCancel(bg)
	defer stopLoad()
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Go(func() {
			for n := 0; ctx.Err() == nil; n++ {
				key := fmt.Sprintf("k%d-%d", w, n)
				r := c.do(bg, "POST", url(n%2, "/api/v1/echo"), tok, `{"n":1}`, "Idempotency-Key", key)
				stats.record("POST /api/v1/echo", r, 201, 409)
				note(key, r)
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
	time.Sleep(time.Second)

	proxy.stop()
	down := time.Now()
	for i := range hubs {
		eventually(t, 10*time.Second, "echo fails closed while postgres is down", func() (bool, string) {
			key := "down-" + randHex(4)
			r := c.do(bg, "POST", url(i, "/api/v1/echo"), tok, `{"n":2}`, "Idempotency-Key", key)
			note(key, r)
			return isProblem503(r, "idempotency_store_unavailable"), r.String()
		})
		r := c.do(bg, "GET", url(i, "/api/v1/tenancy/quotas/"+tenant), tok, "")
		assert.True(t, isProblem503(r, "quota_store_unavailable"), "quotas while postgres is down: %v", r)
		r = c.do(bg, "POST", url(i, "/api/v1/previews"), tok, `{"system_id":"s"}`)
		assert.True(t, isProblem503(r, "quota_store_unavailable"), "preview while postgres is down: %v", r)
		r = c.do(bg, "DELETE", url(i, "/api/v1/previews/"+previews[i]), tok, "")
		assert.True(t, isProblem503(r, "db_unavailable"), "preview delete (the hub's own table) while postgres is down: %v", r)
		assert.Equal(t, "1", r.header.Get("Retry-After"), "%v", r)
		r = c.do(bg, "POST", url(i, "/api/v1/feature-flags/llm.streaming/toggle"), admin, `{"enabled":true,"tenant_id":"`+tenant+`"}`)
		assert.True(t, isProblem503(r, "flags_unavailable"), "toggle while postgres is down: %v", r)
		r = c.do(bg, "GET", url(i, "/api/v1/whoami"), tok, "")
		assert.Equal(t, 200, r.status, "whoami needs no backend: %v", r)
		eventually(t, 10*time.Second, "readyz reports the database down", func() (bool, string) {
			r := c.do(bg, "GET", url(i, "/readyz"), "", "")
			return isProblem503(r, "db_unavailable"), r.String()
		})
	}
	time.Sleep(2 * time.Second) // the load keeps meeting the outage

	proxy.start()
	up := time.Now()
	for i := range hubs {
		took := eventually(t, 15*time.Second, "echo recovers without restarting the hub", func() (bool, string) {
			key := "up-" + randHex(4)
			r := c.do(bg, "POST", url(i, "/api/v1/echo"), tok, `{"n":3}`, "Idempotency-Key", key)
			note(key, r)
			return r.status == 201, r.String()
		})
		t.Logf("hub %d: writes recovered %s after postgres came back (outage %s)", i, took.Round(time.Millisecond), up.Sub(down).Round(time.Millisecond))
		eventually(t, 10*time.Second, "readyz recovers", func() (bool, string) {
			r := c.do(bg, "GET", url(i, "/readyz"), "", "")
			return r.status == 200, r.String()
		})
		r := c.do(bg, "DELETE", url(i, "/api/v1/previews/"+previews[i]), tok, "")
		assert.Equal(t, 204, r.status, "the preview record survived the outage: %v", r)
		r = c.do(bg, "POST", url(i, "/api/v1/feature-flags/llm.streaming/toggle"), admin, `{"enabled":true,"tenant_id":"`+tenant+`"}`)
		assert.Equal(t, 200, r.status, "toggle after the outage: %v", r)
	}
	time.Sleep(500 * time.Millisecond)
	stopLoad()
	wg.Wait()

	// Every key that was answered is replayed, never run again. A key
	// whose completion was lost with the connection stays locked (409)
	// until its lease (IDEMPOTENCY_LOCK_TIMEOUT, 30s) expires.
	locked := 0
	mu.Lock()
	defer mu.Unlock()
	for key := range ids {
		n := map[string]string{"k": "1", "d": "2", "u": "3"}[key[:1]]
		r := c.do(bg, "POST", url(1, "/api/v1/echo"), tok, `{"n":`+n+`}`, "Idempotency-Key", key)
		switch r.status {
		case 201:
			assert.True(t, r.replay(), "key %s ran again after the outage: %v", key, r)
			ids[key][r.str("id")] = true
			assert.Len(t, ids[key], 1, "key %s answered with two echo ids", key)
		case 409:
			locked++
		default:
			t.Errorf("retry of %s: %v", key, r)
		}
	}
	var executions float64
	for _, h := range hubs {
		v, err := c.metric(h.addr, "hub_echo_executions_total")
		require.NoError(t, err)
		executions += v
	}
	assert.Equal(t, float64(len(ids)), executions, "echo executions = echo ids answered: nothing ran twice")
	assert.Empty(t, stats.unexpected)
	assert.Positive(t, stats.fail503["idempotency_store_unavailable"], "the load saw the outage")
	for i, h := range hubs {
		assert.NotContains(t, h.logs(), "panic", "hub %d", i)
	}
	t.Logf("postgres outage (proxy to POSTGRES_URL): %d load requests %v, 503s %v; %d keys answered, %d executions, %d keys still locked after a lost completion",
		stats.total(), stats.counts, stats.fail503, len(ids), int(executions), locked)
}
