package egress

import (
	"bufio"
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// echoServer echoes every TCP connection on 127.0.0.1 until the test
// ends.
func echoServer(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]struct{}{}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = struct{}{}
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, _ = io.Copy(c, c)
				_ = c.Close()
			}()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().(*net.TCPAddr).Port
}

type proxyFixture struct {
	proxy    *Proxy
	proxyURL *url.URL
	client   *http.Client
	httpPort int
	tlsPort  int
	echoPort int
	gotVia   chan string
}

func newProxyFixture(t *testing.T, opts ...ProxyOption) *proxyFixture {
	t.Helper()
	f := &proxyFixture{gotVia: make(chan string, 16)}
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-r.Context().Done()
			return
		}
		select {
		case f.gotVia <- r.Header.Get("Via") + "|" + r.Header.Get("X-Forwarded-For"):
		default:
		}
		_, _ = fmt.Fprintf(w, "plain %s", r.URL.Path)
	}))
	t.Cleanup(plain.Close)
	secure := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = fmt.Fprintf(w, "secure %s", r.URL.Path)
	}))
	t.Cleanup(secure.Close)
	f.httpPort = plain.Listener.Addr().(*net.TCPAddr).Port
	f.tlsPort = secure.Listener.Addr().(*net.TCPAddr).Port
	f.echoPort = echoServer(t)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	proxyPort := ln.Addr().(*net.TCPAddr).Port
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closedPort := closed.Addr().(*net.TCPAddr).Port
	require.NoError(t, closed.Close())

	res := newTestResolver().set("upstream.test", "127.0.0.1").set("secure.test", "127.0.0.1").
		set("echo.test", "127.0.0.1").set("self.test", "127.0.0.1").set("closed.test", "127.0.0.1").
		set("metadata.test", "169.254.169.254")
	policy, err := NewPolicy(
		WithAllow("upstream.test:"+itoa(f.httpPort), "secure.test:"+itoa(f.tlsPort),
			"echo.test:"+itoa(f.echoPort), "self.test:"+itoa(proxyPort), "closed.test:"+itoa(closedPort),
			"metadata.test"),
		WithAllowCIDR(netip.MustParsePrefix("127.0.0.1/32")),
		WithResolver(res))
	require.NoError(t, err)
	f.proxy, err = NewProxy(policy, opts...)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.proxy.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		assert.NoError(t, <-done)
	})
	f.proxyURL = &url.URL{Scheme: "http", Host: ln.Addr().String()}

	pool := x509.NewCertPool()
	pool.AddCert(secure.Certificate())
	tr := &http.Transport{Proxy: http.ProxyURL(f.proxyURL)}
	tr.TLSClientConfig = secure.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
	tr.TLSClientConfig.RootCAs = pool
	tr.TLSClientConfig.ServerName = "example.com"
	f.client = &http.Client{Transport: tr, Timeout: 10 * time.Second}
	t.Cleanup(tr.CloseIdleConnections)
	return f
}

// closedHost is the allowlisted destination nothing listens on.
func (f *proxyFixture) closedHost() string {
	for _, r := range f.proxy.policy.allow {
		if r.host == "closed.test" {
			return "closed.test:" + itoa(r.port)
		}
	}
	return ""
}

// connect opens a CONNECT tunnel through the proxy and returns the
// connection and the status.
func (f *proxyFixture) connect(t *testing.T, dest string) (net.Conn, *bufio.Reader, *http.Response) {
	t.Helper()
	c, err := net.DialTimeout("tcp", f.proxyURL.Host, 5*time.Second)
	require.NoError(t, err)
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	_, err = fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", dest, dest)
	require.NoError(t, err)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	require.NoError(t, err)
	return c, br, resp
}

func TestProxyEndToEnd(t *testing.T) {
	t.Parallel()
	f := newProxyFixture(t)

	// Plain HTTP, absolute-form.
	resp, err := f.client.Get(fmt.Sprintf("http://upstream.test:%d/hello", f.httpPort))
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "plain /hello", string(body))
	via := <-f.gotVia
	assert.Contains(t, via, "hardening-egress-")
	assert.True(t, strings.HasSuffix(via, "|"), "no X-Forwarded-For leaks the sandbox address: %q", via)

	// HTTPS through a CONNECT tunnel.
	resp, err = f.client.Get(fmt.Sprintf("https://secure.test:%d/x", f.tlsPort))
	require.NoError(t, err)
	body, _ = io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	assert.Equal(t, "secure /x", string(body))

	// Everything else is 403 with the reason header and a problem body.
	for _, tc := range []struct {
		url, reason string
	}{
		{fmt.Sprintf("http://127.0.0.1:%d/", f.httpPort), ReasonNotInAllowlist},
		{fmt.Sprintf("http://localhost:%d/", f.httpPort), ReasonNotInAllowlist},
		{fmt.Sprintf("http://upstream.test:%d/", f.tlsPort), ReasonPortNotAllowed},
		{"http://metadata.test/latest/meta-data/", ReasonSpecialPurpose},
		{"http://169.254.169.254/latest/meta-data/", ReasonSpecialPurpose}, // before the allowlist
		{"http://0x7f.1/", ReasonMalformedHost},
		{"http://self.test:" + f.proxyURL.Port() + "/", ReasonProxyLoop},
	} {
		resp, err := f.client.Get(tc.url)
		require.NoError(t, err, tc.url)
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		assert.Equal(t, http.StatusForbidden, resp.StatusCode, tc.url)
		assert.Equal(t, tc.reason, resp.Header.Get(ReasonHeader), tc.url)
		assert.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"), tc.url)
	}

	// CONNECT refusals.
	for dest, reason := range map[string]string{
		"127.0.0.1:" + itoa(f.tlsPort):          ReasonNotInAllowlist,
		"self.test:" + f.proxyURL.Port():        ReasonProxyLoop,
		"metadata.test:443":                     ReasonSpecialPurpose,
		"[::ffff:127.0.0.1]:" + itoa(f.tlsPort): ReasonNotInAllowlist,
		"2130706433:443":                        ReasonMalformedHost,
	} {
		c, _, resp := f.connect(t, dest)
		assert.Equal(t, http.StatusForbidden, resp.StatusCode, dest)
		assert.Equal(t, reason, resp.Header.Get(ReasonHeader), dest)
		_ = c.Close()
	}
	_, err = f.client.Get(fmt.Sprintf("https://localhost:%d/", f.tlsPort))
	require.Error(t, err, "a refused CONNECT fails the HTTPS request")

	// A request that already went through this proxy is a loop.
	req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("http://upstream.test:%d/", f.httpPort), nil)
	req.Header.Set("Via", "1.1 "+f.proxy.via)
	resp, err = f.client.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, ReasonProxyLoop, resp.Header.Get(ReasonHeader))

	// Not a proxy request.
	resp, err = http.Get(f.proxyURL.String() + "/")
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)

	// An allowed destination that refuses connections.
	resp, err = f.client.Get("http://" + f.closedHost() + "/")
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusBadGateway, resp.StatusCode)
}

// TestProxyConnectEdges: bytes the client sends right behind the
// CONNECT header reach the destination; an allowed destination that refuses
// the connection is a 502.
func TestProxyConnectEdges(t *testing.T) {
	t.Parallel()
	f := newProxyFixture(t)
	c, err := net.DialTimeout("tcp", f.proxyURL.Host, 5*time.Second)
	require.NoError(t, err)
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	dest := "echo.test:" + itoa(f.echoPort)
	_, err = fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\nearly bytes\n", dest, dest)
	require.NoError(t, err)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	line, err := br.ReadString('\n')
	require.NoError(t, err)
	assert.Equal(t, "early bytes\n", line)

	var closedPort int
	for _, r := range f.proxy.policy.allow {
		if r.host == "closed.test" {
			closedPort = r.port
		}
	}
	c2, _, resp2 := f.connect(t, "closed.test:"+itoa(closedPort))
	defer c2.Close()
	assert.Equal(t, http.StatusBadGateway, resp2.StatusCode)
}

func TestProxyTunnelLimit(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	f := newProxyFixture(t, WithMaxTunnels(2), WithRegisterer(reg))
	echo := "echo.test:" + itoa(f.echoPort)
	var open []net.Conn
	for i := 0; i < 2; i++ {
		c, br, resp := f.connect(t, echo)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		_, err := fmt.Fprintf(c, "ping%d\n", i)
		require.NoError(t, err)
		line, err := br.ReadString('\n')
		require.NoError(t, err)
		assert.Equal(t, fmt.Sprintf("ping%d\n", i), line)
		open = append(open, c)
	}
	active, err := testutil.GatherAndCount(reg, "hardening_previewsec_egress_proxy_active")
	require.NoError(t, err)
	assert.Equal(t, 1, active)
	assert.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP hardening_previewsec_egress_proxy_active Open CONNECT tunnels plus forwarded requests of the egress proxy.
# TYPE hardening_previewsec_egress_proxy_active gauge
hardening_previewsec_egress_proxy_active 2
# HELP hardening_previewsec_egress_proxy_max The egress proxy's limit on concurrent tunnels plus forwarded requests.
# TYPE hardening_previewsec_egress_proxy_max gauge
hardening_previewsec_egress_proxy_max 2
`)))
	c, _, resp := f.connect(t, echo)
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.Equal(t, ReasonTunnelLimit, resp.Header.Get(ReasonHeader))
	assert.Equal(t, "1", resp.Header.Get("Retry-After"))
	_ = c.Close()
	// Forwarded plain requests count against the same limit.
	resp2, err := f.client.Get(fmt.Sprintf("http://upstream.test:%d/", f.httpPort))
	require.NoError(t, err)
	_ = resp2.Body.Close()
	assert.Equal(t, http.StatusServiceUnavailable, resp2.StatusCode)

	// Closing a tunnel frees its slot.
	_ = open[0].Close()
	ok := false
	for i := 0; i < 200 && !ok; i++ {
		c, _, resp := f.connect(t, echo)
		ok = resp.StatusCode == http.StatusOK
		_ = c.Close()
		if !ok {
			time.Sleep(10 * time.Millisecond)
		}
	}
	assert.True(t, ok, "a slot frees up after a tunnel closes")
	_ = open[1].Close()
}

func TestProxyIdleTimeout(t *testing.T) {
	t.Parallel()
	f := newProxyFixture(t, WithIdleTimeout(100*time.Millisecond))
	c, br, resp := f.connect(t, "echo.test:"+itoa(f.echoPort))
	defer c.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := br.ReadByte()
	require.Error(t, err)

	// The idle timeout also bounds the wait for a forwarded response.
	resp, err = f.client.Get(fmt.Sprintf("http://upstream.test:%d/slow", f.httpPort))
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusGatewayTimeout, resp.StatusCode)
	var ne net.Error
	assert.False(t, errorsAsNetTimeout(err, &ne), "the proxy closed the idle tunnel before the client's deadline: %v", err)
}

func errorsAsNetTimeout(err error, ne *net.Error) bool {
	if e, ok := err.(net.Error); ok {
		*ne = e
		return e.Timeout()
	}
	return false
}

// TestProxyShutdownClosesTunnels: cancelling Serve ends open tunnels
// (goleak in TestMain checks no goroutine is left).
func TestProxyShutdownClosesTunnels(t *testing.T) {
	t.Parallel()
	echoPort := echoServer(t)
	res := newTestResolver().set("echo.test", "127.0.0.1")
	policy, err := NewPolicy(WithAllow("echo.test:"+itoa(echoPort)),
		WithAllowCIDR(netip.MustParsePrefix("127.0.0.1/32")), WithResolver(res))
	require.NoError(t, err)
	proxy, err := NewProxy(policy)
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- proxy.Serve(ctx, ln) }()
	f := &proxyFixture{proxyURL: &url.URL{Host: ln.Addr().String()}}
	c, br, resp := f.connect(t, "echo.test:"+itoa(echoPort))
	defer c.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	cancel()
	require.NoError(t, <-done)
	_, err = br.ReadByte()
	assert.Error(t, err)
}

func TestProxyOptions(t *testing.T) {
	t.Parallel()
	p, err := NewPolicy()
	require.NoError(t, err)
	_, err = NewProxy(nil)
	assert.Error(t, err)
	_, err = NewProxy(p, WithMaxTunnels(0))
	assert.Error(t, err)
	_, err = NewProxy(p, WithConnectTimeout(0))
	assert.Error(t, err)
	_, err = NewProxy(p, WithIdleTimeout(-time.Second))
	assert.Error(t, err)
	px, err := NewProxy(p, WithSelfAddrs(netip.MustParseAddrPort("0.0.0.0:8081")))
	require.NoError(t, err)
	assert.True(t, px.isSelf(Decision{Port: 8081, Addrs: []netip.Addr{netip.MustParseAddr("127.0.0.1")}}))
	assert.True(t, px.isSelf(Decision{Port: 8081, Addrs: []netip.Addr{netip.MustParseAddr("::ffff:127.0.0.1")}}))
	assert.False(t, px.isSelf(Decision{Port: 8082, Addrs: []netip.Addr{netip.MustParseAddr("127.0.0.1")}}))
	assert.False(t, px.isSelf(Decision{Port: 8081, Addrs: []netip.Addr{netip.MustParseAddr("93.184.215.14")}}))
	require.NoError(t, px.Close(context.Background()))
}

// TestProxyConcurrentClients: many clients at once against a small
// limit get either the upstream's answer or 503 tunnel_limit, nothing
// else, and every slot is free again afterwards.
func TestProxyConcurrentClients(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	f := newProxyFixture(t, WithMaxTunnels(3), WithRegisterer(reg))
	const clients = 24
	var wg sync.WaitGroup
	statuses := make(chan int, clients*2)
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if i%2 == 0 {
				resp, err := f.client.Get(fmt.Sprintf("http://upstream.test:%d/c%d", f.httpPort, i))
				if err != nil {
					statuses <- -1
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				statuses <- resp.StatusCode
				return
			}
			c, err := net.DialTimeout("tcp", f.proxyURL.Host, 5*time.Second)
			if err != nil {
				statuses <- -1
				return
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			dest := "echo.test:" + itoa(f.echoPort)
			_, _ = fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", dest, dest)
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
			if err != nil {
				statuses <- -1
				return
			}
			if resp.StatusCode == http.StatusOK {
				_, _ = fmt.Fprintf(c, "hi%d\n", i)
				if line, err := br.ReadString('\n'); err != nil || line != fmt.Sprintf("hi%d\n", i) {
					statuses <- -2
					return
				}
			}
			statuses <- resp.StatusCode
		}(i)
	}
	wg.Wait()
	close(statuses)
	ok := 0
	for s := range statuses {
		require.Contains(t, []int{http.StatusOK, http.StatusServiceUnavailable}, s)
		if s == http.StatusOK {
			ok++
		}
	}
	assert.Positive(t, ok)
	// Every slot is released once the clients are done.
	free := false
	for i := 0; i < 200 && !free; i++ {
		free = len(f.proxy.sem) == 0
		if !free {
			time.Sleep(10 * time.Millisecond)
		}
	}
	assert.True(t, free)
}
