package egress

import (
	"log/slog"
	"net/netip"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type policyConfig struct {
	allow, deny  []string
	allowCIDR    []netip.Prefix
	defaultPorts []int
	resolver     Resolver
	log          *slog.Logger
	reg          prometheus.Registerer
	dialTimeout  time.Duration
	cacheTTL     time.Duration
	now          func() time.Time
}

// PolicyOption configures a Policy.
type PolicyOption func(*policyConfig)

// WithAllow adds allowlist entries: "host", "*.domain", either with an
// optional ":port", or an IP address ("203.0.113.7", "[2001:db8::1]:443").
func WithAllow(entries ...string) PolicyOption {
	return func(c *policyConfig) { c.allow = append(c.allow, entries...) }
}

// WithDeny adds denylist entries: the allowlist forms, and CIDRs
// ("198.51.100.0/24") that deny any host resolving into them.
func WithDeny(entries ...string) PolicyOption {
	return func(c *policyConfig) { c.deny = append(c.deny, entries...) }
}

// WithAllowCIDR lets allowlisted hosts resolve to special-purpose
// addresses inside these prefixes (an internal API on 10.1.2.0/24, say).
// It does not allowlist any host by itself. Use sparingly.
func WithAllowCIDR(prefixes ...netip.Prefix) PolicyOption {
	return func(c *policyConfig) { c.allowCIDR = append(c.allowCIDR, prefixes...) }
}

// WithDefaultPorts sets the ports an allowlist entry without a port
// allows. The default is 80 and 443.
func WithDefaultPorts(ports ...int) PolicyOption {
	return func(c *policyConfig) { c.defaultPorts = append([]int(nil), ports...) }
}

// WithResolver sets the resolver (default net.DefaultResolver).
func WithResolver(r Resolver) PolicyOption {
	return func(c *policyConfig) { c.resolver = r }
}

// WithLogger logs every decision (host, port, decision, reason, rule)
// to l: allowed at Debug, denied at Warn. nil (the default) discards.
func WithLogger(l *slog.Logger) PolicyOption {
	return func(c *policyConfig) { c.log = l }
}

// WithRegisterer counts decisions in
// hardening_previewsec_egress_decisions_total{decision,reason} on reg.
// nil (the default) means no metrics. Policies sharing a registerer share
// the counter.
func WithRegisterer(reg prometheus.Registerer) PolicyOption {
	return func(c *policyConfig) { c.reg = reg }
}

// WithDialTimeout bounds each connect attempt of the policy's dialer
// (default 10s).
func WithDialTimeout(d time.Duration) PolicyOption {
	return func(c *policyConfig) { c.dialTimeout = d }
}

// WithResolveCache keeps successful DNS answers for ttl (at most 4096
// names), so repeated decisions for the same host skip the resolver. The
// decision and the dial still use one and the same answer, so caching does
// not weaken the rebinding protection; it only delays seeing a changed
// answer by up to ttl. Failed lookups are not cached. 0 (the default)
// disables the cache.
func WithResolveCache(ttl time.Duration) PolicyOption {
	return func(c *policyConfig) { c.cacheTTL = ttl }
}

// WithClock sets the clock of the resolution cache (default
// time.Now).
func WithClock(now func() time.Time) PolicyOption {
	return func(c *policyConfig) { c.now = now }
}
