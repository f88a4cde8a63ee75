package main

// Postgres stopped and restarted under load. The test cannot stop the
// shared server at POSTGRES_URL, so the hubs reach it through faultProxy,
// a TCP proxy the test controls: stop closes every connection and refuses
// new ones (the database is down), start accepts again (it is back). See
// docs/reliability.md.

import (
	"io"
	"net"
	"net/url"
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
	hubs := make([]*hubProc, 2)
	for i := range hubs {
		hubs[i] = startHub(t, env...)
	}
	o := startOutage(t, hubs)
	previews := make([]string, len(hubs)) // one record in hub_previews per hub
	for i := range hubs {
		r := o.do(i, "POST", "/api/v1/previews", o.tok, `{"system_id":"s"}`)
		require.Equal(t, 201, r.status, "%v", r)
		previews[i] = r.str("preview_id")
	}

	proxy.stop()
	down := time.Now()
	for i := range hubs {
		o.checkDown(i, "postgres", "db_unavailable")
		r := o.do(i, "DELETE", "/api/v1/previews/"+previews[i], o.tok, "")
		assert.True(t, isProblem503(r, "db_unavailable"), "preview delete (the hub's own table) while postgres is down: %v", r)
		assert.Equal(t, "1", r.header.Get("Retry-After"), "%v", r)
	}
	time.Sleep(2 * time.Second) // the load keeps meeting the outage

	proxy.start()
	up := time.Now()
	for i := range hubs {
		took := o.checkUp(i)
		t.Logf("hub %d: writes recovered %s after postgres came back (outage %s)", i, took.Round(time.Millisecond), up.Sub(down).Round(time.Millisecond))
		r := o.do(i, "DELETE", "/api/v1/previews/"+previews[i], o.tok, "")
		assert.Equal(t, 204, r.status, "the preview record survived the outage: %v", r)
		r = o.do(i, "POST", "/api/v1/feature-flags/llm.streaming/toggle", o.admin, `{"enabled":true,"tenant_id":"`+o.tenant+`"}`)
		assert.Equal(t, 200, r.status, "toggle after the outage: %v", r)
	}
	time.Sleep(500 * time.Millisecond)
	locked, executions := o.finish()
	for i, h := range hubs {
		assert.NotContains(t, h.logs(), "panic", "hub %d", i)
	}
	t.Logf("postgres outage (proxy to POSTGRES_URL): %s", o.summary(locked, executions))
}
