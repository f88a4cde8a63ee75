package egress

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// FuzzNormalizeHost: NormalizeHost never panics; what it accepts is a
// fixed point, plain ASCII, and either a canonical IP address or a valid
// LDH host name whose last label is not numeric.
func FuzzNormalizeHost(f *testing.F) {
	for _, s := range []string{"api.openai.com", "127.0.0.1", "0x7f.1", "[::1]", "bücher.example", "１２７.０.０.１"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := NormalizeHost(in)
		if err != nil {
			if out != "" {
				t.Fatalf("%q: error with output %q", in, out)
			}
			return
		}
		for i := 0; i < len(out); i++ {
			if out[i] >= 0x80 || out[i] <= ' ' {
				t.Fatalf("%q -> %q: not plain ASCII", in, out)
			}
		}
		again, err := NormalizeHost(out)
		if err != nil || again != out {
			t.Fatalf("%q -> %q -> %q, %v: not a fixed point", in, out, again, err)
		}
		if a, err := netip.ParseAddr(out); err == nil {
			if a.String() != out || a.Zone() != "" {
				t.Fatalf("%q -> %q: not canonical", in, out)
			}
			return
		}
		if err := checkHostname(out); err != nil {
			t.Fatalf("%q -> %q: %v", in, out, err)
		}
	})
}

// fuzzResolver resolves every name: names under special.example to
// special-purpose addresses, names containing "mixed" to a public and a
// loopback address, others to a public address.
type fuzzResolver struct{}

func (fuzzResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	switch {
	case strings.HasSuffix(host, ".special.example"):
		return []netip.Addr{netip.MustParseAddr("169.254.169.254"), netip.MustParseAddr("::ffff:10.0.0.1")}, nil
	case strings.Contains(host, "mixed"):
		return []netip.Addr{netip.MustParseAddr("93.184.215.14"), netip.MustParseAddr("::1")}, nil
	}
	return []netip.Addr{netip.MustParseAddr("93.184.215.14")}, nil
}

// FuzzEgressDecide: with the fuzzed destination itself on the allowlist,
// and again in public mode, Decide never panics, answers only known reason
// codes, never allows a destination that normalises to, or resolves to, a
// special-purpose address, and (public mode) never allows what the
// allowlist mode calls special-purpose.
func FuzzEgressDecide(f *testing.F) {
	for _, s := range []string{"api.openai.com", "127.0.0.1", "x.special.example", "mixed.example", "::ffff:7f00:1", "0177.0.0.1"} {
		f.Add(s, uint16(443))
	}
	f.Fuzz(func(t *testing.T, host string, port uint16) {
		opts := []PolicyOption{WithAllow("*.special.example", "*.example"), WithDeny("*.deny.example"),
			WithResolver(fuzzResolver{}), WithPorts(443, int(max(port, 1)))}
		if _, err := parseRules(host); err == nil && !strings.Contains(host, ",") {
			opts = append(opts, WithAllow(host))
		}
		allowlist, err := NewPolicy(opts...)
		if err != nil {
			t.Fatalf("policy: %v", err)
		}
		public, err := NewPolicy(WithMode(ModePublic), WithDeny("*.deny.example"),
			WithResolver(fuzzResolver{}), WithPorts(443, int(max(port, 1))))
		if err != nil {
			t.Fatalf("public policy: %v", err)
		}
		ctx := context.Background()
		d := allowlist.Decide(ctx, host, int(port))
		checkFuzzDecision(t, host, port, d)
		pd := public.Decide(ctx, host, int(port))
		checkFuzzDecision(t, host, port, pd)
		if d.Reason == ReasonSpecialPurpose && pd.Allowed {
			t.Fatalf("%q:%d: special-purpose in allowlist mode, allowed in public mode: %+v", host, port, pd)
		}
	})
}

// fuzzReasons are the reason codes a Decision may carry.
var fuzzReasons = []string{ReasonAllowed, ReasonNotInAllowlist, ReasonDenylisted, ReasonSpecialPurpose, ReasonMalformedHost, ReasonDNSError, ReasonPortNotAllowed}

// checkFuzzDecision fails t when d has an unknown reason, or allows a
// destination it must not.
func checkFuzzDecision(t *testing.T, host string, port uint16, d Decision) {
	t.Helper()
	if !slices.Contains(fuzzReasons, d.Reason) {
		t.Fatalf("%q:%d: unknown reason %q", host, port, d.Reason)
	}
	if !d.Allowed {
		return
	}
	if d.Reason != ReasonAllowed || len(d.Addrs) == 0 {
		t.Fatalf("%q:%d: allowed without reason or addresses: %+v", host, port, d)
	}
	if norm, err := NormalizeHost(host); err != nil || norm != d.Host {
		t.Fatalf("%q:%d: allowed a host that normalises to %q, %v", host, port, norm, err)
	}
	if a, err := netip.ParseAddr(d.Host); err == nil {
		if name, special := SpecialPurpose(a); special {
			t.Fatalf("%q:%d: allowed special-purpose %s (%s)", host, port, a, name)
		}
	}
	for _, a := range d.Addrs {
		if name, special := SpecialPurpose(a); special {
			t.Fatalf("%q:%d: allowed, resolving to special-purpose %s (%s)", host, port, a, name)
		}
	}
}
