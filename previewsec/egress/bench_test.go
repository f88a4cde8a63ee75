package egress

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"testing"
	"time"
)

// BenchmarkEgressMapLookupBaseline is the baseline for
// BenchmarkEgressDecideCached: a bare map lookup of "host:port".
func BenchmarkEgressMapLookupBaseline(b *testing.B) {
	allowed := map[string]bool{}
	for _, h := range benchAllow {
		allowed[h] = true
	}
	key := "api.openai.com:443"
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if allowed[key] {
			n++
		}
	}
	if n == 0 {
		b.Fatal("not found")
	}
}

var benchAllow = []string{"api.openai.com:443", "*.anthropic.com", "api.mistral.ai:443", "generativelanguage.googleapis.com:443",
	"*.githubusercontent.com", "registry.npmjs.org:443", "proxy.golang.org:443", "pypi.org:443", "files.pythonhosted.org:443", "*.example.com"}

// BenchmarkEgressDecideCached: a full Decide (normalisation, deny and allow
// rules, ports, special-purpose checks on both addresses) with the
// resolution answered by the policy's resolve cache.
func BenchmarkEgressDecideCached(b *testing.B) {
	benchDecide(b, WithAllow(benchAllow...))
}

// BenchmarkEgressDecideCachedPublic is BenchmarkEgressDecideCached in
// public mode: no allowlist rules, the same address checks.
func BenchmarkEgressDecideCachedPublic(b *testing.B) {
	benchDecide(b, WithMode(ModePublic))
}

// benchDecide decides api.openai.com:443 (two cached public addresses)
// under a policy with a deny rule and opts.
func benchDecide(b *testing.B, opts ...PolicyOption) {
	res := newTestResolver().set("api.openai.com", "104.18.33.45", "2606:4700::6812:212d")
	p, err := NewPolicy(append(opts, WithDeny("*.evil.example.com"), WithResolver(res), WithResolveCache(time.Hour))...)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if !p.Decide(ctx, "api.openai.com", 443).Allowed {
			b.Fatal("denied")
		}
	}
}

// BenchmarkEgressDecideCachedIDN is Decide on an internationalised name
// (the IDNA mapping path).
func BenchmarkEgressDecideCachedIDN(b *testing.B) {
	res := newTestResolver().set("xn--bcher-kva.example.com", "93.184.215.14")
	p, err := NewPolicy(WithAllow(benchAllow...), WithResolver(res), WithResolveCache(time.Hour))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if !p.Decide(ctx, "Bücher.example.com", 443).Allowed {
			b.Fatal("denied")
		}
	}
}

// benchUpstream starts an HTTP upstream and an echo server on
// loopback, and a proxy allowing both.
func benchUpstream(b *testing.B) (proxyURL *url.URL, httpAddr, echoAddr string) {
	b.Helper()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}), ReadHeaderTimeout: 5 * time.Second}
	hl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = srv.Serve(hl) }()
	b.Cleanup(func() { _ = srv.Close() })
	el, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go func() {
		for {
			c, err := el.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(c, c); _ = c.Close() }()
		}
	}()
	b.Cleanup(func() { _ = el.Close() })
	res := newTestResolver().set("upstream.test", "127.0.0.1").set("echo.test", "127.0.0.1")
	p, err := NewPolicy(WithAllow(fmt.Sprintf("upstream.test:%d", hl.Addr().(*net.TCPAddr).Port),
		fmt.Sprintf("echo.test:%d", el.Addr().(*net.TCPAddr).Port)),
		WithAllowCIDR(netip.MustParsePrefix("127.0.0.1/32")), WithResolver(res))
	if err != nil {
		b.Fatal(err)
	}
	proxy, err := NewProxy(p)
	if err != nil {
		b.Fatal(err)
	}
	pl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = proxy.Serve(ctx, pl); close(done) }()
	b.Cleanup(func() { cancel(); <-done })
	return &url.URL{Scheme: "http", Host: pl.Addr().String()}, hl.Addr().String(), el.Addr().String()
}

func benchGet(b *testing.B, client *http.Client, u string) {
	resp, err := client.Get(u)
	if err != nil {
		b.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b.Fatalf("status %d", resp.StatusCode)
	}
}

// BenchmarkEgressHTTPDirect is the baseline for BenchmarkEgressHTTPProxy:
// keep-alive GETs straight to the loopback upstream.
func BenchmarkEgressHTTPDirect(b *testing.B) {
	_, httpAddr, _ := benchUpstream(b)
	tr := &http.Transport{Proxy: nil}
	b.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr}
	b.ReportAllocs()
	for b.Loop() {
		benchGet(b, client, "http://"+httpAddr+"/")
	}
}

// BenchmarkEgressHTTPProxy: the same GETs as absolute-form requests through
// the Proxy (policy decision, forward, response copy).
func BenchmarkEgressHTTPProxy(b *testing.B) {
	proxyURL, httpAddr, _ := benchUpstream(b)
	_, port, _ := net.SplitHostPort(httpAddr)
	tr := &http.Transport{Proxy: http.ProxyURL(proxyURL)}
	b.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr}
	b.ReportAllocs()
	for b.Loop() {
		benchGet(b, client, "http://upstream.test:"+port+"/")
	}
}

const benchChunk = 64 << 10

func benchEcho(b *testing.B, c net.Conn, r io.Reader) {
	buf := make([]byte, benchChunk)
	in := make([]byte, benchChunk)
	b.SetBytes(benchChunk)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Write(buf); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(r, in); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEgressTunnelDirect is the baseline for BenchmarkEgressTunnelProxy:
// 64 KiB echoed over a direct loopback TCP connection.
func BenchmarkEgressTunnelDirect(b *testing.B) {
	_, _, echoAddr := benchUpstream(b)
	c, err := net.Dial("tcp", echoAddr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	benchEcho(b, c, c)
}

// BenchmarkEgressTunnelProxy: the same echo through a CONNECT tunnel of the
// Proxy.
func BenchmarkEgressTunnelProxy(b *testing.B) {
	proxyURL, _, echoAddr := benchUpstream(b)
	_, port, _ := net.SplitHostPort(echoAddr)
	c, err := net.Dial("tcp", proxyURL.Host)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	if _, err := fmt.Fprintf(c, "CONNECT echo.test:%s HTTP/1.1\r\nHost: echo.test:%s\r\n\r\n", port, port); err != nil {
		b.Fatal(err)
	}
	// Read exactly the status line and the blank line, leaving the tunnel
	// unbuffered.
	want := "HTTP/1.1 200 Connection Established\r\n\r\n"
	got := make([]byte, len(want))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != want {
		b.Fatalf("CONNECT: %q %v", got, err)
	}
	benchEcho(b, c, c)
}
