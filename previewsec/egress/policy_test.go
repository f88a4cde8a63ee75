package egress

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testResolver answers from a table. A host with several answers
// gives them in turn (the last one repeats), which models DNS answers that
// change between a check and a dial.
type testResolver struct {
	mu      sync.Mutex
	answers map[string][][]netip.Addr
	calls   map[string]int
}

func newTestResolver() *testResolver {
	return &testResolver{answers: map[string][][]netip.Addr{}, calls: map[string]int{}}
}

// set adds one answer (a list of addresses) for host; call again to queue
// the next answer.
func (r *testResolver) set(host string, addrs ...string) *testResolver {
	r.mu.Lock()
	defer r.mu.Unlock()
	as := make([]netip.Addr, 0, len(addrs))
	for _, a := range addrs {
		as = append(as, netip.MustParseAddr(a))
	}
	r.answers[host] = append(r.answers[host], as)
	return r
}

func (r *testResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	i := r.calls[host]
	r.calls[host]++
	seq, ok := r.answers[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	if i >= len(seq) {
		i = len(seq) - 1
	}
	return append([]netip.Addr(nil), seq[i]...), nil
}

// countingListener accepts TCP connections on 127.0.0.1 and counts
// them: the victim every hostile destination aims at.
type countingListener struct {
	ln       net.Listener
	accepted atomic.Int64
	done     chan struct{}
}

func newCountingListener(t *testing.T) *countingListener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	l := &countingListener{ln: ln, done: make(chan struct{})}
	go func() {
		defer close(l.done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			l.accepted.Add(1)
			_ = c.Close()
		}
	}()
	t.Cleanup(func() { _ = ln.Close(); <-l.done })
	return l
}

func (l *countingListener) port() int { return l.ln.Addr().(*net.TCPAddr).Port }

func TestPolicyRules(t *testing.T) {
	t.Parallel()
	res := newTestResolver().
		set("api.openai.com", "104.18.33.45").
		set("api.anthropic.com", "160.79.104.10").
		set("eu.api.anthropic.com", "160.79.104.11").
		set("anthropic.com", "160.79.104.12").
		set("files.example.org", "93.184.215.14").
		set("bad.files.example.org", "93.184.215.15").
		set("internal.example.org", "10.1.2.3").
		set("v6.example.org", "2606:4700::1111").
		set("dual.example.org", "93.184.215.16", "2606:4700::1112").
		set("halfbad.example.org", "93.184.215.17", "fd00::1").
		set("denied-cidr.example.org", "93.184.215.18", "93.184.215.200").
		set("xn--bcher-kva.example", "93.184.215.19")
	p, err := NewPolicy(
		WithAllow("api.openai.com:443", "*.anthropic.com", "files.example.org:8443, *.files.example.org",
			"internal.example.org", "v6.example.org", "dual.example.org", "halfbad.example.org",
			"denied-cidr.example.org", "bücher.example", "8.8.8.8:53", "[2606:4700::64]:443"),
		WithDeny("bad.files.example.org", "*.deny.example.org", "93.184.215.128/25"),
		WithResolver(res),
	)
	require.NoError(t, err)
	ctx := context.Background()
	cases := []struct {
		host   string
		port   int
		allow  bool
		reason string
	}{
		{"api.openai.com", 443, true, ReasonAllowed},
		{"API.OPENAI.COM.", 443, true, ReasonAllowed},
		{"api.openai.com", 80, false, ReasonPortNotAllowed},
		{"api.openai.com", 8443, false, ReasonPortNotAllowed},
		{"api.anthropic.com", 443, true, ReasonAllowed},
		{"api.anthropic.com", 80, true, ReasonAllowed},
		{"api.anthropic.com", 22, false, ReasonPortNotAllowed},
		{"eu.api.anthropic.com", 443, true, ReasonAllowed},
		{"anthropic.com", 443, false, ReasonNotInAllowlist}, // wildcard excludes the apex
		{"evilanthropic.com", 443, false, ReasonNotInAllowlist},
		{"anthropic.com.evil.example", 443, false, ReasonNotInAllowlist},
		{"files.example.org", 8443, true, ReasonAllowed},
		{"files.example.org", 443, false, ReasonPortNotAllowed},
		{"bad.files.example.org", 443, false, ReasonDenylisted},
		{"internal.example.org", 443, false, ReasonSpecialPurpose},
		{"v6.example.org", 443, true, ReasonAllowed},
		{"dual.example.org", 443, true, ReasonAllowed},
		{"halfbad.example.org", 443, false, ReasonSpecialPurpose},
		{"denied-cidr.example.org", 443, false, ReasonDenylisted},
		{"BÜCHER.example", 443, true, ReasonAllowed},
		{"8.8.8.8", 53, true, ReasonAllowed},
		{"8.8.8.8", 443, false, ReasonPortNotAllowed},
		{"[2606:4700::64]", 443, true, ReasonAllowed},
		{"2606:4700::64", 443, true, ReasonAllowed},
		{"8.8.4.4", 443, false, ReasonNotInAllowlist},
		{"unknown.anthropic.com", 443, false, ReasonDNSError},
		{"0x08080808", 53, false, ReasonMalformedHost},
		{"api.openai.com", 0, false, ReasonMalformedHost},
		{"api.openai.com", 70000, false, ReasonMalformedHost},
	}
	for _, tc := range cases {
		d := p.Decide(ctx, tc.host, tc.port)
		assert.Equal(t, tc.allow, d.Allowed, "%s:%d %+v", tc.host, tc.port, d)
		assert.Equal(t, tc.reason, d.Reason, "%s:%d %+v", tc.host, tc.port, d)
	}
	d := p.Decide(ctx, "api.openai.com", 443)
	assert.Equal(t, "api.openai.com:443", d.Rule)
	assert.Equal(t, []netip.Addr{netip.MustParseAddr("104.18.33.45")}, d.Addrs)
	d = p.Decide(ctx, "halfbad.example.org", 443)
	assert.Contains(t, d.Rule, "fc00::/7")
	assert.Len(t, d.Addrs, 2)

	assert.True(t, p.DecideURL(ctx, "https://api.openai.com/v1/models").Allowed)
	assert.Equal(t, ReasonPortNotAllowed, p.DecideURL(ctx, "http://api.openai.com/v1/models").Reason)
	assert.Equal(t, ReasonMalformedHost, p.DecideURL(ctx, "ftp://api.openai.com/").Reason)
	assert.Equal(t, ReasonMalformedHost, p.DecideURL(ctx, "https://user@api.openai.com/").Reason)
	assert.Equal(t, ReasonMalformedHost, p.DecideURL(ctx, "https://[::1/").Reason)
	assert.True(t, p.DecideHostPort(ctx, "api.openai.com:443").Allowed)
	assert.Equal(t, ReasonMalformedHost, p.DecideHostPort(ctx, "api.openai.com").Reason)
}

func TestEmptyAllowlistDeniesAll(t *testing.T) {
	t.Parallel()
	p, err := NewPolicy(WithResolver(newTestResolver().set("api.openai.com", "104.18.33.45")))
	require.NoError(t, err)
	for _, h := range []string{"api.openai.com", "8.8.8.8", "localhost"} {
		d := p.Decide(context.Background(), h, 443)
		assert.False(t, d.Allowed)
		assert.Equal(t, ReasonNotInAllowlist, d.Reason)
	}
	// A special-purpose address says so, before the allowlist.
	for _, h := range []string{"127.0.0.1", "169.254.169.254", "::ffff:10.0.0.1"} {
		d := p.Decide(context.Background(), h, 443)
		assert.False(t, d.Allowed)
		assert.Equal(t, ReasonSpecialPurpose, d.Reason, h)
	}
	assert.Equal(t, ModeAllowlist, p.Mode(), "the default mode")
}

func TestAllowCIDR(t *testing.T) {
	t.Parallel()
	res := newTestResolver().set("db.internal.example", "10.1.2.3").set("other.internal.example", "10.9.9.9")
	p, err := NewPolicy(WithAllow("*.internal.example:5432"), WithResolver(res),
		WithAllowCIDR(netip.MustParsePrefix("10.1.2.0/24")))
	require.NoError(t, err)
	assert.True(t, p.Decide(context.Background(), "db.internal.example", 5432).Allowed)
	d := p.Decide(context.Background(), "other.internal.example", 5432)
	assert.Equal(t, ReasonSpecialPurpose, d.Reason)
	// The CIDR does not allowlist hosts by itself.
	assert.Equal(t, ReasonNotInAllowlist, p.Decide(context.Background(), "10.1.2.3", 5432).Reason)
}

func TestPolicyConfigErrors(t *testing.T) {
	t.Parallel()
	for _, opts := range [][]PolicyOption{
		{WithAllow("0x7f.1")},
		{WithAllow("*")},
		{WithAllow("a.*.example.com")},
		{WithAllow("*.127.0.0.1")},
		{WithAllow("user@example.com")},
		{WithAllow("example.com:0")},
		{WithDeny("exa mple.com")},
		{WithPorts(0)},
		{WithDialTimeout(0)},
		{WithAllowCIDR(netip.Prefix{})},
	} {
		_, err := NewPolicy(opts...)
		assert.Error(t, err)
	}
}

func TestParseLists(t *testing.T) {
	t.Parallel()
	allow, err := ParseAllowlist(" api.openai.com:443 , *.anthropic.com ,,")
	require.NoError(t, err)
	assert.Equal(t, []string{"api.openai.com:443", "*.anthropic.com"}, allow)
	deny, err := ParseDenylist("evil.anthropic.com, 198.51.100.0/24")
	require.NoError(t, err)
	assert.Equal(t, []string{"evil.anthropic.com", "198.51.100.0/24"}, deny)
	res := newTestResolver().set("api.openai.com", "104.18.33.45").set("evil.anthropic.com", "160.79.104.66")
	p, err := NewPolicy(WithAllow(allow...), WithDeny(deny...), WithResolver(res))
	require.NoError(t, err)
	assert.True(t, p.Decide(context.Background(), "api.openai.com", 443).Allowed)
	assert.Equal(t, ReasonDenylisted, p.Decide(context.Background(), "evil.anthropic.com", 443).Reason)

	_, err = ParseAllowlist("api.openai.com, 0x7f.1")
	require.Error(t, err)
	assert.Contains(t, err.Error(), `"0x7f.1"`)
	_, err = ParseAllowlist("10.0.0.0/8")
	require.Error(t, err, "a CIDR allowlists nothing")
	_, err = ParseDenylist("ok.example, bad host")
	require.Error(t, err)
	assert.Contains(t, err.Error(), `"bad host"`)

	allow, err = ParseAllowlist("")
	require.NoError(t, err)
	assert.Empty(t, allow)
}

func TestMetricsAndLogs(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	var buf bytes.Buffer
	var mu sync.Mutex
	log := slog.New(slog.NewJSONHandler(&lockedWriter{w: &buf, mu: &mu}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	res := newTestResolver().set("api.openai.com", "104.18.33.45")
	p, err := NewPolicy(WithAllow("api.openai.com:443"), WithResolver(res),
		WithRegisterer(reg), WithLogger(log))
	require.NoError(t, err)
	// A second policy on the same registry shares the counter.
	p2, err := NewPolicy(WithRegisterer(reg))
	require.NoError(t, err)
	ctx := context.Background()
	p.Decide(ctx, "api.openai.com", 443)
	p.Decide(ctx, "api.openai.com", 443)
	p.Decide(ctx, "127.0.0.1", 443)
	p2.Decide(ctx, "0x7f.1", 443)
	assert.Equal(t, 2.0, testutil.ToFloat64(p.decisions.WithLabelValues("allow", ReasonAllowed)))
	assert.Equal(t, 1.0, testutil.ToFloat64(p.decisions.WithLabelValues("deny", ReasonSpecialPurpose)))
	assert.Equal(t, 1.0, testutil.ToFloat64(p.decisions.WithLabelValues("deny", ReasonMalformedHost)))
	n, err := testutil.GatherAndCount(reg, "hardening_previewsec_egress_decisions_total")
	require.NoError(t, err)
	assert.Equal(t, 3, n)
	mu.Lock()
	out := buf.String()
	mu.Unlock()
	assert.Contains(t, out, `"host":"127.0.0.1"`)
	assert.Contains(t, out, `"decision":"deny"`)
	assert.Contains(t, out, `"reason":"special_purpose_address"`)
	assert.Contains(t, out, `"port":443`)
	assert.Contains(t, out, `"decision":"allow"`)
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// TestRebinding: the answer changes between a check and the dial; the
// dial resolves and checks again, and the dialer's ControlContext checks
// the exact IP it connects to.
func TestRebinding(t *testing.T) {
	t.Parallel()
	victim := newCountingListener(t)
	res := newTestResolver().
		set("flip.example", "93.184.215.14").set("flip.example", "127.0.0.1").
		set("flip2.example", "93.184.215.14").set("flip2.example", "169.254.169.254")
	p, err := NewPolicy(WithAllow("flip.example", "flip2.example"), WithPorts(victim.port()), WithResolver(res))
	require.NoError(t, err)
	ctx := context.Background()
	for _, host := range []string{"flip.example", "flip2.example"} {
		hp := net.JoinHostPort(host, itoa(victim.port()))
		require.True(t, p.DecideHostPort(ctx, hp).Allowed, "the check sees the public answer")
		c, err := p.DialContext(ctx, "tcp", hp)
		require.Error(t, err)
		assert.Nil(t, c)
		assert.ErrorIs(t, err, ErrDenied)
		var de *DeniedError
		require.ErrorAs(t, err, &de)
		assert.Equal(t, ReasonSpecialPurpose, de.Decision.Reason)
	}
	// The bare dialer checks the exact address in ControlContext, whatever
	// resolved it.
	c, err := p.Dialer().DialContext(ctx, "tcp", net.JoinHostPort("127.0.0.1", itoa(victim.port())))
	require.Error(t, err)
	assert.Nil(t, c)
	assert.ErrorIs(t, err, ErrDenied)
	c, err = p.Dialer().DialContext(ctx, "tcp", net.JoinHostPort("localhost", itoa(victim.port())))
	require.Error(t, err)
	assert.Nil(t, c)
	assert.Equal(t, int64(0), victim.accepted.Load())
}

// TestControlPinsCheckedAddress: even where an address is allowed by
// CIDR, the dial for a decision goes only to the addresses that decision
// checked.
func TestControlPinsCheckedAddress(t *testing.T) {
	t.Parallel()
	victim := newCountingListener(t)
	p, err := NewPolicy(WithAllowCIDR(netip.MustParsePrefix("127.0.0.0/8")))
	require.NoError(t, err)
	ctx := context.WithValue(context.Background(), dialKey{}, []netip.Addr{netip.MustParseAddr("127.0.0.2")})
	c, err := p.Dialer().DialContext(ctx, "tcp", net.JoinHostPort("127.0.0.1", itoa(victim.port())))
	require.Error(t, err)
	assert.Nil(t, c)
	var de *DeniedError
	require.ErrorAs(t, err, &de)
	assert.Equal(t, "address not in the checked answer", de.Decision.Rule)
	assert.Equal(t, int64(0), victim.accepted.Load())

	// And the same dial without the pin reaches the listener: the test
	// above fails for the right reason.
	c, err = p.Dialer().DialContext(context.Background(), "tcp", net.JoinHostPort("127.0.0.1", itoa(victim.port())))
	require.NoError(t, err)
	_ = c.Close()
}

func TestDialNetworks(t *testing.T) {
	t.Parallel()
	p, err := NewPolicy()
	require.NoError(t, err)
	_, err = p.DialContext(context.Background(), "udp", "8.8.8.8:53")
	require.Error(t, err)
	_, err = p.DialContext(context.Background(), "unix", "/tmp/x")
	require.Error(t, err)
}

// TestRedirects follows redirect chains from an allowed test server
// towards loopback and the metadata service: the client refuses every hop
// that leaves the allowlist, and no connection reaches the victim.
func TestRedirects(t *testing.T) {
	t.Parallel()
	victim := newCountingListener(t)
	vport := itoa(victim.port())
	mux := http.NewServeMux()
	redirect := func(path, to string) {
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, to, http.StatusFound) })
	}
	redirect("/to-loopback", "http://127.0.0.1:"+vport+"/")
	redirect("/to-loopback-name", "http://localhost:"+vport+"/")
	redirect("/to-metadata", "http://169.254.169.254/latest/meta-data/iam/security-credentials/")
	redirect("/to-metadata-name", "http://metadata.test:"+vport+"/computeMetadata/v1/")
	redirect("/to-mapped", "http://[::ffff:127.0.0.1]:"+vport+"/")
	redirect("/to-decimal", "http://2130706433:"+vport+"/")
	redirect("/to-userinfo", "http://upstream.test@127.0.0.1:"+vport+"/")
	redirect("/to-file", "file:///etc/passwd")
	redirect("/hop1", "/hop2")
	redirect("/hop2", "/hop3")
	redirect("/hop3", "http://169.254.169.254/")
	redirect("/loop", "/loop")
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok")) })
	upstream := httptest.NewServer(mux)
	t.Cleanup(upstream.Close)
	uport := upstream.Listener.Addr().(*net.TCPAddr).Port

	res := newTestResolver().set("upstream.test", "127.0.0.1").set("metadata.test", "169.254.169.254").set("localhost", "127.0.0.1")
	p, err := NewPolicy(WithAllow("upstream.test:"+itoa(uport), "metadata.test:"+vport),
		WithAllowCIDR(netip.MustParsePrefix("127.0.0.1/32")), WithResolver(res))
	require.NoError(t, err)
	client := NewClient(p)
	t.Cleanup(client.CloseIdleConnections)
	base := "http://upstream.test:" + itoa(uport)

	resp, err := client.Get(base + "/ok")
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)

	for _, path := range []string{"/to-loopback", "/to-loopback-name", "/to-metadata", "/to-metadata-name", "/to-mapped",
		"/to-decimal", "/to-userinfo", "/to-file", "/hop1", "/loop"} {
		resp, err := client.Get(base + path)
		if resp != nil {
			_ = resp.Body.Close()
		}
		require.Error(t, err, path)
		if path != "/loop" && path != "/to-file" {
			assert.ErrorIs(t, err, ErrDenied, path)
		}
	}
	assert.Equal(t, int64(0), victim.accepted.Load())
}

func TestTransportIgnoresProxyEnv(t *testing.T) {
	t.Setenv("HTTP_PROXY", "http://127.0.0.1:1")
	t.Setenv("HTTPS_PROXY", "http://127.0.0.1:1")
	p, err := NewPolicy()
	require.NoError(t, err)
	tr := NewTransport(p)
	assert.Nil(t, tr.Proxy)
	req, _ := http.NewRequest(http.MethodGet, "http://api.openai.com/", nil)
	cl := NewClient(p)
	_, err = cl.Do(req)
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrDenied, "judged against the destination, not a proxy")
	assert.True(t, strings.Contains(err.Error(), "not_in_allowlist"))
}

func itoa(i int) string { return strconv.Itoa(i) }

// TestEtcHostsLoopback uses the system resolver: "localhost" comes
// from /etc/hosts (no DNS query leaves the machine) and resolves to
// loopback, so even allowlisted it is denied and never dialled.
func TestEtcHostsLoopback(t *testing.T) {
	t.Parallel()
	victim := newCountingListener(t)
	p, err := NewPolicy(WithAllow("localhost", "LOCALHOST."), WithPorts(victim.port()))
	require.NoError(t, err)
	ctx := context.Background()
	for _, h := range []string{"localhost", "LocalHost.", "ⓛⓞⓒⓐⓛⓗⓞⓢⓣ"} {
		d := p.Decide(ctx, h, victim.port())
		assert.False(t, d.Allowed, h)
		assert.Contains(t, []string{ReasonSpecialPurpose, ReasonDNSError}, d.Reason, h)
		c, err := p.DialContext(ctx, "tcp", net.JoinHostPort(h, itoa(victim.port())))
		if !assert.Error(t, err, h) {
			_ = c.Close()
		}
		resp, err := NewClient(p).Get("http://" + net.JoinHostPort(h, itoa(victim.port())) + "/")
		if !assert.Error(t, err, h) {
			_ = resp.Body.Close()
		}
	}
	assert.Equal(t, int64(0), victim.accepted.Load())
}

func TestResolveCache(t *testing.T) {
	t.Parallel()
	res := newTestResolver().
		set("api.openai.com", "104.18.33.45").set("api.openai.com", "127.0.0.1")
	now := time.Unix(1_700_000_000, 0)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	p, err := NewPolicy(WithAllow("api.openai.com:443", "nope.example"), WithResolver(res),
		WithResolveCache(time.Minute), WithClock(clock))
	require.NoError(t, err)
	ctx := context.Background()
	for i := 0; i < 5; i++ {
		d := p.Decide(ctx, "api.openai.com", 443)
		assert.True(t, d.Allowed)
		assert.Equal(t, []netip.Addr{netip.MustParseAddr("104.18.33.45")}, d.Addrs)
		d.Addrs[0] = netip.MustParseAddr("127.0.0.1") // a caller scribbling on its Decision
	}
	res.mu.Lock()
	assert.Equal(t, 1, res.calls["api.openai.com"], "answered from the cache")
	res.mu.Unlock()
	// Failures are not cached.
	assert.Equal(t, ReasonDNSError, p.Decide(ctx, "nope.example", 443).Reason)
	assert.Equal(t, ReasonDNSError, p.Decide(ctx, "nope.example", 443).Reason)
	res.mu.Lock()
	assert.Equal(t, 2, res.calls["nope.example"])
	res.mu.Unlock()
	// After the TTL the new (rebound) answer is seen, and denied.
	mu.Lock()
	now = now.Add(time.Minute)
	mu.Unlock()
	assert.Equal(t, ReasonSpecialPurpose, p.Decide(ctx, "api.openai.com", 443).Reason)

	_, err = NewPolicy(WithResolveCache(-time.Second))
	assert.Error(t, err)
}

func TestResolveCacheBounded(t *testing.T) {
	t.Parallel()
	c := &resolveCache{ttl: time.Minute, now: time.Now, m: map[string]cacheEntry{}}
	for i := 0; i < cacheMax+10; i++ {
		c.put(fmt.Sprintf("h%d.example", i), []netip.Addr{netip.MustParseAddr("93.184.215.14")})
	}
	assert.LessOrEqual(t, len(c.m), cacheMax)
}

// TestConcurrentDecide runs decisions from many goroutines through
// the resolve cache and the metrics; every decision is counted once.
func TestConcurrentDecide(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	res := newTestResolver().set("api.openai.com", "104.18.33.45").set("bad.example", "10.0.0.1")
	p, err := NewPolicy(WithAllow("api.openai.com:443", "bad.example"), WithResolver(res),
		WithResolveCache(time.Minute), WithRegisterer(reg))
	require.NoError(t, err)
	const workers, each = 8, 200
	var wg sync.WaitGroup
	var wrong atomic.Int64
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				switch i % 3 {
				case 0:
					if !p.Decide(context.Background(), "api.openai.com", 443).Allowed {
						wrong.Add(1)
					}
				case 1:
					if p.Decide(context.Background(), "bad.example", 443).Allowed {
						wrong.Add(1)
					}
				default:
					if p.Decide(context.Background(), "0x7f.1", 443).Allowed {
						wrong.Add(1)
					}
				}
			}
		}()
	}
	wg.Wait()
	assert.Zero(t, wrong.Load())
	total := 0.0
	for _, lv := range [][2]string{{"allow", ReasonAllowed}, {"deny", ReasonSpecialPurpose}, {"deny", ReasonMalformedHost}} {
		total += testutil.ToFloat64(p.decisions.WithLabelValues(lv[0], lv[1]))
	}
	assert.Equal(t, float64(workers*each), total)
}
