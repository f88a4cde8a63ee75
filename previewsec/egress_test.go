package previewsec

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

// egressTestResolver answers from a table. A host with several answers
// gives them in turn (the last one repeats), which models DNS answers that
// change between a check and a dial.
type egressTestResolver struct {
	mu      sync.Mutex
	answers map[string][][]netip.Addr
	calls   map[string]int
}

func newEgressTestResolver() *egressTestResolver {
	return &egressTestResolver{answers: map[string][][]netip.Addr{}, calls: map[string]int{}}
}

// set adds one answer (a list of addresses) for host; call again to queue
// the next answer.
func (r *egressTestResolver) set(host string, addrs ...string) *egressTestResolver {
	r.mu.Lock()
	defer r.mu.Unlock()
	as := make([]netip.Addr, 0, len(addrs))
	for _, a := range addrs {
		as = append(as, netip.MustParseAddr(a))
	}
	r.answers[host] = append(r.answers[host], as)
	return r
}

func (r *egressTestResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
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

// egressCountingListener accepts TCP connections on 127.0.0.1 and counts
// them: the victim every hostile destination aims at.
type egressCountingListener struct {
	ln       net.Listener
	accepted atomic.Int64
	done     chan struct{}
}

func newEgressCountingListener(t *testing.T) *egressCountingListener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	l := &egressCountingListener{ln: ln, done: make(chan struct{})}
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

func (l *egressCountingListener) port() int { return l.ln.Addr().(*net.TCPAddr).Port }

func TestEgressPolicyRules(t *testing.T) {
	t.Parallel()
	res := newEgressTestResolver().
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
	p, err := NewEgressPolicy(
		WithEgressAllow("api.openai.com:443", "*.anthropic.com", "files.example.org:8443, *.files.example.org",
			"internal.example.org", "v6.example.org", "dual.example.org", "halfbad.example.org",
			"denied-cidr.example.org", "bücher.example", "8.8.8.8:53", "[2606:4700::64]:443"),
		WithEgressDeny("bad.files.example.org", "*.deny.example.org", "93.184.215.128/25"),
		WithEgressResolver(res),
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

func TestEgressEmptyAllowlistDeniesAll(t *testing.T) {
	t.Parallel()
	p, err := NewEgressPolicy(WithEgressResolver(newEgressTestResolver().set("api.openai.com", "104.18.33.45")))
	require.NoError(t, err)
	for _, h := range []string{"api.openai.com", "8.8.8.8", "localhost"} {
		d := p.Decide(context.Background(), h, 443)
		assert.False(t, d.Allowed)
		assert.Equal(t, ReasonNotInAllowlist, d.Reason)
	}
}

func TestEgressAllowCIDR(t *testing.T) {
	t.Parallel()
	res := newEgressTestResolver().set("db.internal.example", "10.1.2.3").set("other.internal.example", "10.9.9.9")
	p, err := NewEgressPolicy(WithEgressAllow("*.internal.example:5432"), WithEgressResolver(res),
		WithEgressAllowCIDR(netip.MustParsePrefix("10.1.2.0/24")))
	require.NoError(t, err)
	assert.True(t, p.Decide(context.Background(), "db.internal.example", 5432).Allowed)
	d := p.Decide(context.Background(), "other.internal.example", 5432)
	assert.Equal(t, ReasonSpecialPurpose, d.Reason)
	// The CIDR does not allowlist hosts by itself.
	assert.Equal(t, ReasonNotInAllowlist, p.Decide(context.Background(), "10.1.2.3", 5432).Reason)
}

func TestEgressPolicyConfigErrors(t *testing.T) {
	t.Parallel()
	for _, opts := range [][]EgressOption{
		{WithEgressAllow("0x7f.1")},
		{WithEgressAllow("*")},
		{WithEgressAllow("a.*.example.com")},
		{WithEgressAllow("*.127.0.0.1")},
		{WithEgressAllow("user@example.com")},
		{WithEgressAllow("example.com:0")},
		{WithEgressDeny("exa mple.com")},
		{WithEgressDefaultPorts(0)},
		{WithEgressDialTimeout(0)},
		{WithEgressAllowCIDR(netip.Prefix{})},
	} {
		_, err := NewEgressPolicy(opts...)
		assert.Error(t, err)
	}
}

func TestEgressPolicyFromEnv(t *testing.T) {
	t.Setenv(EnvEgressAllowlist, " api.openai.com:443 , *.anthropic.com ,,")
	t.Setenv(EnvEgressDenylist, "evil.anthropic.com, 198.51.100.0/24")
	res := newEgressTestResolver().set("api.openai.com", "104.18.33.45").set("evil.anthropic.com", "160.79.104.66")
	p, err := EgressPolicyFromEnv(WithEgressResolver(res))
	require.NoError(t, err)
	assert.True(t, p.Decide(context.Background(), "api.openai.com", 443).Allowed)
	assert.Equal(t, ReasonDenylisted, p.Decide(context.Background(), "evil.anthropic.com", 443).Reason)

	t.Setenv(EnvEgressAllowlist, "api.openai.com, 0x7f.1")
	_, err = EgressPolicyFromEnv()
	require.Error(t, err)
	assert.Contains(t, err.Error(), EnvEgressAllowlist)

	t.Setenv(EnvEgressAllowlist, "")
	t.Setenv(EnvEgressDenylist, "bad host")
	_, err = EgressPolicyFromEnv()
	require.Error(t, err)
	assert.Contains(t, err.Error(), EnvEgressDenylist)

	t.Setenv(EnvEgressDenylist, "")
	p, err = EgressPolicyFromEnv()
	require.NoError(t, err)
	assert.Equal(t, ReasonNotInAllowlist, p.Decide(context.Background(), "api.openai.com", 443).Reason)
}

func TestEgressMetricsAndLogs(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	var buf bytes.Buffer
	var mu sync.Mutex
	log := slog.New(slog.NewJSONHandler(&egressLockedWriter{w: &buf, mu: &mu}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	res := newEgressTestResolver().set("api.openai.com", "104.18.33.45")
	p, err := NewEgressPolicy(WithEgressAllow("api.openai.com:443"), WithEgressResolver(res),
		WithEgressRegisterer(reg), WithEgressLogger(log))
	require.NoError(t, err)
	// A second policy on the same registry shares the counter.
	p2, err := NewEgressPolicy(WithEgressRegisterer(reg))
	require.NoError(t, err)
	ctx := context.Background()
	p.Decide(ctx, "api.openai.com", 443)
	p.Decide(ctx, "api.openai.com", 443)
	p.Decide(ctx, "127.0.0.1", 443)
	p2.Decide(ctx, "0x7f.1", 443)
	assert.Equal(t, 2.0, testutil.ToFloat64(p.decisions.WithLabelValues("allow", ReasonAllowed)))
	assert.Equal(t, 1.0, testutil.ToFloat64(p.decisions.WithLabelValues("deny", ReasonNotInAllowlist)))
	assert.Equal(t, 1.0, testutil.ToFloat64(p.decisions.WithLabelValues("deny", ReasonMalformedHost)))
	n, err := testutil.GatherAndCount(reg, "hardening_previewsec_egress_decisions_total")
	require.NoError(t, err)
	assert.Equal(t, 3, n)
	mu.Lock()
	out := buf.String()
	mu.Unlock()
	assert.Contains(t, out, `"host":"127.0.0.1"`)
	assert.Contains(t, out, `"decision":"deny"`)
	assert.Contains(t, out, `"reason":"not_in_allowlist"`)
	assert.Contains(t, out, `"port":443`)
	assert.Contains(t, out, `"decision":"allow"`)
}

type egressLockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *egressLockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// TestEgressRebinding: the answer changes between a check and the dial; the
// dial resolves and checks again, and the dialer's ControlContext checks
// the exact IP it connects to.
func TestEgressRebinding(t *testing.T) {
	t.Parallel()
	victim := newEgressCountingListener(t)
	res := newEgressTestResolver().
		set("flip.example", "93.184.215.14").set("flip.example", "127.0.0.1").
		set("flip2.example", "93.184.215.14").set("flip2.example", "169.254.169.254")
	p, err := NewEgressPolicy(WithEgressAllow("flip.example", "flip2.example"), WithEgressDefaultPorts(victim.port()), WithEgressResolver(res))
	require.NoError(t, err)
	ctx := context.Background()
	for _, host := range []string{"flip.example", "flip2.example"} {
		hp := net.JoinHostPort(host, egressItoa(victim.port()))
		require.True(t, p.DecideHostPort(ctx, hp).Allowed, "the check sees the public answer")
		c, err := p.DialContext(ctx, "tcp", hp)
		require.Error(t, err)
		assert.Nil(t, c)
		assert.ErrorIs(t, err, ErrEgressDenied)
		var de *EgressDeniedError
		require.ErrorAs(t, err, &de)
		assert.Equal(t, ReasonSpecialPurpose, de.Decision.Reason)
	}
	// The bare dialer checks the exact address in ControlContext, whatever
	// resolved it.
	c, err := p.Dialer().DialContext(ctx, "tcp", net.JoinHostPort("127.0.0.1", egressItoa(victim.port())))
	require.Error(t, err)
	assert.Nil(t, c)
	assert.ErrorIs(t, err, ErrEgressDenied)
	c, err = p.Dialer().DialContext(ctx, "tcp", net.JoinHostPort("localhost", egressItoa(victim.port())))
	require.Error(t, err)
	assert.Nil(t, c)
	assert.Equal(t, int64(0), victim.accepted.Load())
}

// TestEgressControlPinsCheckedAddress: even where an address is allowed by
// CIDR, the dial for a decision goes only to the addresses that decision
// checked.
func TestEgressControlPinsCheckedAddress(t *testing.T) {
	t.Parallel()
	victim := newEgressCountingListener(t)
	p, err := NewEgressPolicy(WithEgressAllowCIDR(netip.MustParsePrefix("127.0.0.0/8")))
	require.NoError(t, err)
	ctx := context.WithValue(context.Background(), egressDialKey{}, []netip.Addr{netip.MustParseAddr("127.0.0.2")})
	c, err := p.Dialer().DialContext(ctx, "tcp", net.JoinHostPort("127.0.0.1", egressItoa(victim.port())))
	require.Error(t, err)
	assert.Nil(t, c)
	var de *EgressDeniedError
	require.ErrorAs(t, err, &de)
	assert.Equal(t, "address not in the checked answer", de.Decision.Rule)
	assert.Equal(t, int64(0), victim.accepted.Load())

	// And the same dial without the pin reaches the listener: the test
	// above fails for the right reason.
	c, err = p.Dialer().DialContext(context.Background(), "tcp", net.JoinHostPort("127.0.0.1", egressItoa(victim.port())))
	require.NoError(t, err)
	_ = c.Close()
}

func TestEgressDialNetworks(t *testing.T) {
	t.Parallel()
	p, err := NewEgressPolicy()
	require.NoError(t, err)
	_, err = p.DialContext(context.Background(), "udp", "8.8.8.8:53")
	require.Error(t, err)
	_, err = p.DialContext(context.Background(), "unix", "/tmp/x")
	require.Error(t, err)
}

// TestEgressRedirects follows redirect chains from an allowed test server
// towards loopback and the metadata service: the client refuses every hop
// that leaves the allowlist, and no connection reaches the victim.
func TestEgressRedirects(t *testing.T) {
	t.Parallel()
	victim := newEgressCountingListener(t)
	vport := egressItoa(victim.port())
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

	res := newEgressTestResolver().set("upstream.test", "127.0.0.1").set("metadata.test", "169.254.169.254").set("localhost", "127.0.0.1")
	p, err := NewEgressPolicy(WithEgressAllow("upstream.test:"+egressItoa(uport), "metadata.test:"+vport),
		WithEgressAllowCIDR(netip.MustParsePrefix("127.0.0.1/32")), WithEgressResolver(res))
	require.NoError(t, err)
	client := p.Client()
	t.Cleanup(client.CloseIdleConnections)
	base := "http://upstream.test:" + egressItoa(uport)

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
			assert.ErrorIs(t, err, ErrEgressDenied, path)
		}
	}
	assert.Equal(t, int64(0), victim.accepted.Load())
}

func TestEgressTransportIgnoresProxyEnv(t *testing.T) {
	t.Setenv("HTTP_PROXY", "http://127.0.0.1:1")
	t.Setenv("HTTPS_PROXY", "http://127.0.0.1:1")
	p, err := NewEgressPolicy()
	require.NoError(t, err)
	tr := p.Transport()
	assert.Nil(t, tr.Proxy)
	req, _ := http.NewRequest(http.MethodGet, "http://api.openai.com/", nil)
	cl := p.Client()
	_, err = cl.Do(req)
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrEgressDenied, "judged against the destination, not a proxy")
	assert.True(t, strings.Contains(err.Error(), "not_in_allowlist"))
}

func egressItoa(i int) string { return strconv.Itoa(i) }

// TestEgressEtcHostsLoopback uses the system resolver: "localhost" comes
// from /etc/hosts (no DNS query leaves the machine) and resolves to
// loopback, so even allowlisted it is denied and never dialled.
func TestEgressEtcHostsLoopback(t *testing.T) {
	t.Parallel()
	victim := newEgressCountingListener(t)
	p, err := NewEgressPolicy(WithEgressAllow("localhost", "LOCALHOST."), WithEgressDefaultPorts(victim.port()))
	require.NoError(t, err)
	ctx := context.Background()
	for _, h := range []string{"localhost", "LocalHost.", "ⓛⓞⓒⓐⓛⓗⓞⓢⓣ"} {
		d := p.Decide(ctx, h, victim.port())
		assert.False(t, d.Allowed, h)
		assert.Contains(t, []string{ReasonSpecialPurpose, ReasonDNSError}, d.Reason, h)
		c, err := p.DialContext(ctx, "tcp", net.JoinHostPort(h, egressItoa(victim.port())))
		if !assert.Error(t, err, h) {
			_ = c.Close()
		}
		resp, err := p.Client().Get("http://" + net.JoinHostPort(h, egressItoa(victim.port())) + "/")
		if !assert.Error(t, err, h) {
			_ = resp.Body.Close()
		}
	}
	assert.Equal(t, int64(0), victim.accepted.Load())
}

func TestEgressResolveCache(t *testing.T) {
	t.Parallel()
	res := newEgressTestResolver().
		set("api.openai.com", "104.18.33.45").set("api.openai.com", "127.0.0.1")
	now := time.Unix(1_700_000_000, 0)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	p, err := NewEgressPolicy(WithEgressAllow("api.openai.com:443", "nope.example"), WithEgressResolver(res),
		WithEgressResolveCache(time.Minute), WithEgressClock(clock))
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

	_, err = NewEgressPolicy(WithEgressResolveCache(-time.Second))
	assert.Error(t, err)
}

func TestEgressResolveCacheBounded(t *testing.T) {
	t.Parallel()
	c := &egressResolveCache{ttl: time.Minute, now: time.Now, m: map[string]egressCacheEntry{}}
	for i := 0; i < egressCacheMax+10; i++ {
		c.put(fmt.Sprintf("h%d.example", i), []netip.Addr{netip.MustParseAddr("93.184.215.14")})
	}
	assert.LessOrEqual(t, len(c.m), egressCacheMax)
}

// TestEgressConcurrentDecide runs decisions from many goroutines through
// the resolve cache and the metrics; every decision is counted once.
func TestEgressConcurrentDecide(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	res := newEgressTestResolver().set("api.openai.com", "104.18.33.45").set("bad.example", "10.0.0.1")
	p, err := NewEgressPolicy(WithEgressAllow("api.openai.com:443", "bad.example"), WithEgressResolver(res),
		WithEgressResolveCache(time.Minute), WithEgressRegisterer(reg))
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
