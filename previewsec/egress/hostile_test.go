package egress

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// hostile is one destination a sandbox must not reach. dest is
// "host:PORT" with PORT replaced by the victim listener's port; reason,
// when set, is the expected reason code.
type hostile struct {
	dest   string
	reason string
	// noAllow keeps the destination out of the allowlist (by default every
	// parseable hostile destination is allowlisted, so only the
	// normalisation and address checks stand between it and the victim).
	noAllow bool
	// rebind: the first answer is public (so the first check allows), every
	// later answer is special-purpose: the dial must still be refused.
	rebind bool
	// publicReason is the reason in public mode, when it differs.
	publicReason string
}

func hostileTable() []hostile {
	var hs []hostile
	add := func(reason string, hosts ...string) {
		for _, h := range hosts {
			dest := h + ":PORT"
			if strings.Contains(h, ":") && !strings.HasPrefix(h, "[") && !strings.Contains(h, "PORT") {
				dest = "[" + h + "]:PORT"
			}
			hs = append(hs, hostile{dest: dest, reason: reason})
		}
	}
	// IPv4 literals in every special-purpose range.
	add(ReasonSpecialPurpose,
		"127.0.0.1", "127.0.0.2", "127.1.2.3", "127.255.255.254", "0.0.0.0", "0.1.2.3", "10.0.0.1", "10.255.255.254",
		"172.16.0.1", "172.20.1.1", "172.31.255.254", "192.168.0.1", "192.168.1.1", "192.168.255.254",
		"100.64.0.1", "100.100.100.200", "100.127.255.254", "169.254.169.254", "169.254.170.2", "169.254.0.1",
		"192.0.0.1", "192.0.0.8", "192.0.0.9", "192.0.0.10", "192.0.0.170", "192.0.0.171", "192.0.2.1",
		"192.31.196.1", "192.52.193.1", "192.88.99.1", "192.175.48.1", "198.18.0.1", "198.19.255.254",
		"198.51.100.7", "203.0.113.9", "224.0.0.1", "239.255.255.250", "240.0.0.1", "250.1.2.3",
		"255.255.255.254", "255.255.255.255", "127.0.0.1.", "１２７.０.０.１", "127。0。0。1", "①②⑦.0.0.1",
		"１６９.２５４.１６９.２５４")
	// IPv6 literals: special ranges and every IPv4-embedding form.
	add(ReasonSpecialPurpose,
		"::1", "::", "0:0:0:0:0:0:0:1", "0000::0001", "::ffff:127.0.0.1", "::ffff:7f00:1", "::ffff:169.254.169.254",
		"::ffff:a9fe:a9fe", "::ffff:10.0.0.1", "::ffff:192.168.1.1", "::ffff:0.0.0.0", "::ffff:0:127.0.0.1",
		"64:ff9b::127.0.0.1", "64:ff9b::a9fe:a9fe", "64:ff9b::10.0.0.1", "64:ff9b:1::1", "64:ff9b:1::808:808",
		"2002:7f00:1::1", "2002:a9fe:a9fe::", "2002:c0a8:101::1", "2002:a00:1::", "2001:0:7f00:1::1",
		"2001:0:4136:e378:8000:63bf:80ff:fffe", "2001:0:a9fe:a9fe::", "fc00::1", "fd00::1", "fd00:ec2::254",
		"fdff:ffff::1", "fe80::1", "fe80::a9fe:a9fe", "febf::1", "fec0::1", "ff02::1", "ff05::2", "ff0e::1",
		"::127.0.0.1", "::169.254.169.254", "100::1", "100:0:0:1::1", "2001:db8::1", "2001:2::1", "2001:10::1",
		"2001:20::1", "3fff::1", "5f00::1", "4000::1", "::2", "[::1]", "[::ffff:127.0.0.1]")
	// Non-canonical IPv4 forms, userinfo, zones and junk: malformed.
	add(ReasonMalformedHost,
		"0177.0.0.1", "0x7f.0.0.1", "0x7f000001", "0X7F000001", "2130706433", "017700000001", "127.1", "127.0.1",
		"0", "0x0", "127.000.000.001", "127.0.0.01", "0177.0000.0000.0001", "1.1.1.1.1", "169.254.43518",
		"0xa9fea9fe", "2852039166", "0251.0376.0251.0376", "0xA9.0xFE.0xA9.0xFE", "0xa9.254.169.254",
		"169.0xfe.169.254", "025177524776", "10.1", "192.168.257", "0x0a000001", "167772161",
		"user@127.0.0.1", "api.openai.com@127.0.0.1", "user:pass@169.254.169.254", "127.0.0.1%00",
		"127.0.0.1%2f", "fe80::1%25eth0", "[fe80::1%eth0]", "exa mple.com", "-x.example", "x-.example",
		"_x.example", "xn--zz-.example", "[127.0.0.1]", "[localhost]", "local\\host", "local/host",
		"127.0.0.1#", "127.0.0.1?", "*.example.com", "a..b", ".", "..", "ⓛⓞⓒⓐⓛⓗⓞⓢⓣ.0x7f",
		strings.Repeat("a", 64)+".example")
	// Names that resolve (test resolver or /etc/hosts-like table) to
	// special-purpose addresses, although allowlisted.
	add(ReasonSpecialPurpose,
		"localhost", "LOCALHOST", "localhost.", "LocalHost.", "ⓛⓞⓒⓐⓛⓗⓞⓢⓣ", "ｌｏｃａｌｈｏｓｔ", "loopback.test",
		"metadata.test", "metadata.google.internal", "instance-data", "instance-data.ec2.internal",
		"private.test", "mixed.test", "mixed6.test", "mapped.test", "nat64.test", "sixtofour.test", "teredo.test",
		"ula.test", "linklocal6.test", "zero.test", "broadcast.test", "cgnat.test", "bench.test", "multicast.test",
		"v6loop.test", "127.0.0.1.nip.io", "localtest.me", "a.b.c.rebind.test", "xn--bcher-kva.test", "bücher.test",
		"docker.for.mac.localhost", "host.docker.internal", "kubernetes.default.svc", "alibaba-metadata.test")
	add(ReasonDNSError, "nxdomain.test", "empty.test")
	add(ReasonDenylisted, "denied.test", "sub.deny.test", "deep.sub.deny.test", "cidr-denied.test")
	hs = append(hs,
		// Off the allowlist: a name is not resolved in allowlist mode; an
		// address is judged by the registries first.
		hostile{dest: "notallowed.test:PORT", reason: ReasonNotInAllowlist, noAllow: true, publicReason: ReasonSpecialPurpose},
		hostile{dest: "127.0.0.3:PORT", reason: ReasonSpecialPurpose, noAllow: true},
		hostile{dest: "[::ffff:169.254.169.254]:PORT", reason: ReasonSpecialPurpose, noAllow: true},
		hostile{dest: "port.test:PORT", reason: ReasonPortNotAllowed, noAllow: true, publicReason: ReasonSpecialPurpose},
		hostile{dest: "127.0.0.1:PORT:PORT", reason: ReasonMalformedHost},
		hostile{dest: "127.0.0.1", reason: ReasonMalformedHost},
		hostile{dest: ":PORT", reason: ReasonMalformedHost},
		hostile{dest: "::1:PORT", reason: ReasonMalformedHost},
		hostile{dest: "rebind1.test:PORT", rebind: true},
		hostile{dest: "rebind2.test:PORT", rebind: true},
		hostile{dest: "rebind3.test:PORT", rebind: true},
		hostile{dest: "rebind4.test:PORT", rebind: true},
	)
	return hs
}

func hostileResolver() *testResolver {
	r := newTestResolver()
	for host, addrs := range map[string][]string{
		"localhost": {"127.0.0.1", "::1"}, "loopback.test": {"127.0.0.1"}, "metadata.test": {"169.254.169.254"},
		"metadata.google.internal": {"169.254.169.254"}, "instance-data": {"169.254.169.254"},
		"instance-data.ec2.internal": {"169.254.169.254"}, "private.test": {"10.0.0.5"},
		"mixed.test": {"93.184.215.14", "127.0.0.1"}, "mixed6.test": {"2606:4700::1111", "::1"},
		"mapped.test": {"::ffff:127.0.0.1"}, "nat64.test": {"64:ff9b::7f00:1"}, "sixtofour.test": {"2002:7f00:1::"},
		"teredo.test": {"2001:0:4136:e378:8000:63bf:80ff:fffe"}, "ula.test": {"fd00::1"}, "linklocal6.test": {"fe80::1"},
		"zero.test": {"0.0.0.0"}, "broadcast.test": {"255.255.255.255"}, "cgnat.test": {"100.64.0.1"},
		"bench.test": {"198.18.0.1"}, "multicast.test": {"224.0.0.1"}, "v6loop.test": {"::1"},
		"127.0.0.1.nip.io": {"127.0.0.1"}, "localtest.me": {"127.0.0.1"}, "a.b.c.rebind.test": {"127.0.0.1"},
		"xn--bcher-kva.test": {"192.168.1.1"}, "docker.for.mac.localhost": {"127.0.0.1"},
		"host.docker.internal": {"172.17.0.1"}, "kubernetes.default.svc": {"10.96.0.1"},
		"alibaba-metadata.test": {"100.100.100.200"}, "denied.test": {"93.184.215.14"},
		"sub.deny.test": {"93.184.215.14"}, "deep.sub.deny.test": {"93.184.215.14"},
		"cidr-denied.test": {"93.184.215.66"}, "notallowed.test": {"127.0.0.1"}, "port.test": {"127.0.0.1"},
		"empty.test": {}, "api.openai.com": {"104.18.33.45", "2606:4700::6812:212d"},
		"api.anthropic.com": {"160.79.104.10"},
	} {
		r.set(host, addrs...)
	}
	// DNS answers that change between the check and the dial.
	r.set("rebind1.test", "93.184.215.14").set("rebind1.test", "127.0.0.1")
	r.set("rebind2.test", "93.184.215.14").set("rebind2.test", "169.254.169.254")
	r.set("rebind3.test", "2606:4700::1111").set("rebind3.test", "::ffff:127.0.0.1")
	r.set("rebind4.test", "93.184.215.14").set("rebind4.test", "93.184.215.14", "127.0.0.1")
	return r
}

// TestHostileDestinations tries every hostile destination four ways
// (Decide, DialContext, the policy's http.Client, and the Proxy with
// CONNECT and absolute-form requests) with each one allowlisted where it
// parses: none may reach the victim listener.
func TestHostileDestinations(t *testing.T) {
	t.Parallel()
	victim := newCountingListener(t)
	port := itoa(victim.port())
	allow := []string{"port.test:1", "*.deny.test", "denied.test", "api.openai.com:443", "*.anthropic.com"}
	for _, h := range hostileTable() {
		dest := strings.ReplaceAll(h.dest, "PORT", port)
		if h.noAllow {
			continue
		}
		if _, err := parseRules(dest); err == nil {
			allow = append(allow, dest)
		}
	}
	p, err := NewPolicy(WithAllow(allow...), WithDeny("denied.test", "*.deny.test", "93.184.215.64/26"),
		WithResolver(hostileResolver()), WithPorts(victim.port(), 443))
	require.NoError(t, err)
	assertHostileDenied(t, p, victim, func(h hostile) string { return h.reason })
}

// TestHostileDestinationsPublicMode: the same corpus against a policy in
// public mode, with the victim's port allowed: every destination the
// allowlist mode denies is denied, and none reaches the victim.
func TestHostileDestinationsPublicMode(t *testing.T) {
	t.Parallel()
	victim := newCountingListener(t)
	p, err := NewPolicy(WithMode(ModePublic), WithDeny("denied.test", "*.deny.test", "93.184.215.64/26"),
		WithResolver(hostileResolver()), WithPorts(victim.port(), 443))
	require.NoError(t, err)
	assertHostileDenied(t, p, victim, func(h hostile) string {
		if h.publicReason != "" {
			return h.publicReason
		}
		return h.reason
	})
}

// assertHostileDenied runs the hostile table against p: decisions with the
// expected reasons, dials, the policy's client and the proxy.
func assertHostileDenied(t *testing.T, p *Policy, victim *countingListener, reason func(hostile) string) {
	t.Helper()
	port := itoa(victim.port())
	table := hostileTable()
	require.GreaterOrEqual(t, len(table), 150)
	t.Logf("%d hostile destinations", len(table))
	proxyURL := startProxy(t, p)
	client := NewClient(p)
	client.Timeout = 5 * time.Second
	t.Cleanup(client.CloseIdleConnections)
	ctx := context.Background()

	for _, h := range table {
		dest := strings.ReplaceAll(h.dest, "PORT", port)
		d := p.DecideHostPort(ctx, dest)
		assert.Equal(t, h.rebind, d.Allowed, "%s: %+v", dest, d)
		if want := reason(h); want != "" {
			assert.Equal(t, want, d.Reason, "%s: %+v", dest, d)
		}
		c, err := p.DialContext(ctx, "tcp", dest)
		if !assert.Error(t, err, dest) {
			_ = c.Close()
		} else {
			assert.ErrorIs(t, err, ErrDenied, dest)
		}
		resp, err := client.Get("http://" + dest + "/")
		if !assert.Error(t, err, dest) {
			_ = resp.Body.Close()
		}
		assert.NotEqual(t, 200, rawProxy(t, proxyURL, "CONNECT "+dest+" HTTP/1.1\r\nHost: "+dest+"\r\n\r\n"), dest)
		assert.NotEqual(t, 200, rawProxy(t, proxyURL, "GET http://"+dest+"/ HTTP/1.1\r\nHost: "+dest+"\r\n\r\n"), dest)
	}
	assert.Equal(t, int64(0), victim.accepted.Load(), "a hostile destination reached the listener")

	// The public names are allowed (decided only: no dial leaves the
	// machine).
	for _, u := range []string{"https://api.openai.com/v1/models", "https://API.OpenAI.com./v1/models", "https://api.anthropic.com/v1/messages"} {
		d := p.DecideURL(ctx, u)
		assert.True(t, d.Allowed, "%s: %+v", u, d)
	}
}

// startProxy serves a Proxy for p on 127.0.0.1 until the test
// ends and returns its URL.
func startProxy(t *testing.T, p *Policy, opts ...ProxyOption) *url.URL {
	t.Helper()
	proxy, err := NewProxy(p, opts...)
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- proxy.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		assert.NoError(t, <-done)
	})
	return &url.URL{Scheme: "http", Host: ln.Addr().String()}
}

// rawProxy writes one raw request to the proxy and returns the
// response status (0 when there is none).
func rawProxy(t *testing.T, proxy *url.URL, raw string) int {
	t.Helper()
	c, err := net.DialTimeout("tcp", proxy.Host, 5*time.Second)
	require.NoError(t, err)
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprint(c, raw); err != nil {
		return 0
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0
	}
	_ = resp.Body.Close()
	if resp.StatusCode == http.StatusForbidden {
		assert.NotEmpty(t, resp.Header.Get(ReasonHeader), raw)
	}
	return resp.StatusCode
}
