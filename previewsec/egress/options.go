package egress

import (
	"log/slog"
	"net/netip"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/systembuilderhub/hardening"
)

type policyConfig struct {
	mode        Mode
	allow, deny []string
	allowCIDR   []netip.Prefix
	ports       []int
	resolver    Resolver
	log         *slog.Logger
	reg         prometheus.Registerer
	dialTimeout time.Duration
	cacheTTL    time.Duration
	now         func() time.Time
}

// PolicyOption configures NewPolicy.
//
// NewPolicy takes PolicyOptions and NewProxy takes ProxyOptions.
// WithLogger and WithRegisterer fit both: they return a LoggerOption or
// RegistererOption, which is a PolicyOption and a ProxyOption. Every other
// option fits one constructor and returns its type, so an option that
// does not fit a constructor does not compile. A nil option is ignored;
// invalid values are reported by the constructor.
type PolicyOption interface{ applyPolicy(*policyConfig) }

// ProxyOption configures NewProxy.
type ProxyOption interface{ applyProxy(*proxyConfig) }

type (
	policyOption func(*policyConfig)
	proxyOption  func(*proxyConfig)
)

func (f policyOption) applyPolicy(c *policyConfig) { f(c) }
func (f proxyOption) applyProxy(c *proxyConfig)    { f(c) }

// LoggerOption is the option WithLogger returns: a PolicyOption and a
// ProxyOption.
type LoggerOption struct{ log *slog.Logger }

// WithLogger sets the logger (nil, the default, discards). A policy logs
// every decision (host, port, decision, reason, rule): allowed at Debug,
// denied at Warn. A proxy logs tunnels and failures; its decisions are
// logged by its policy.
func WithLogger(l *slog.Logger) LoggerOption { return LoggerOption{log: l} }

func (o LoggerOption) applyPolicy(c *policyConfig) { c.log = o.log }
func (o LoggerOption) applyProxy(c *proxyConfig)   { c.log = o.log }

// RegistererOption is the option WithRegisterer returns: a PolicyOption
// and a ProxyOption.
type RegistererOption struct{ reg prometheus.Registerer }

// WithRegisterer exports metrics on reg (nil, the default, means none). A
// policy counts decisions in
// hardening_previewsec_egress_decisions_total{decision,reason}; policies
// sharing a registerer share the counter. A proxy exports
// hardening_previewsec_egress_proxy_active (a gauge of open tunnels plus
// forwarded requests) and hardening_previewsec_egress_proxy_max (the
// limit); its decisions are counted by its policy.
func WithRegisterer(reg prometheus.Registerer) RegistererOption {
	return RegistererOption{reg: reg}
}

func (o RegistererOption) applyPolicy(c *policyConfig) { c.reg = o.reg }
func (o RegistererOption) applyProxy(c *proxyConfig)   { c.reg = o.reg }

// WithAllow adds allowlist entries: "host", "*.domain", either with an
// optional ":port", or an IP address ("203.0.113.7", "[2001:db8::1]:443").
// Public mode refuses an allowlist.
func WithAllow(entries ...string) PolicyOption {
	return policyOption(func(c *policyConfig) { c.allow = append(c.allow, entries...) })
}

// WithDeny adds denylist entries: the allowlist forms, and CIDRs
// ("198.51.100.0/24") that deny any host resolving into them.
func WithDeny(entries ...string) PolicyOption {
	return policyOption(func(c *policyConfig) { c.deny = append(c.deny, entries...) })
}

// WithAllowCIDR lets allowlisted hosts resolve to special-purpose
// addresses inside these prefixes (an internal API on 10.1.2.0/24, say).
// It does not allowlist any host by itself, and public mode refuses it.
// Use sparingly.
func WithAllowCIDR(prefixes ...netip.Prefix) PolicyOption {
	return policyOption(func(c *policyConfig) { c.allowCIDR = append(c.allowCIDR, prefixes...) })
}

// WithPorts sets the allowed ports: in public mode the ports any
// destination may use, in allowlist mode the ports an entry without a port
// allows. The default is 80 and 443.
func WithPorts(ports ...int) PolicyOption {
	return policyOption(func(c *policyConfig) { c.ports = append([]int(nil), ports...) })
}

// WithResolver sets the resolver (default net.DefaultResolver).
func WithResolver(r Resolver) PolicyOption {
	return policyOption(func(c *policyConfig) { c.resolver = r })
}

// WithDialTimeout bounds each connect attempt of the policy's dialer
// (default 10s).
func WithDialTimeout(d time.Duration) PolicyOption {
	return policyOption(func(c *policyConfig) { c.dialTimeout = d })
}

// WithResolveCache keeps successful DNS answers for ttl (at most 4096
// names), so repeated decisions for the same host skip the resolver. The
// decision and the dial still use one and the same answer, so caching does
// not weaken the rebinding protection; it only delays seeing a changed
// answer by up to ttl. Failed lookups are not cached. 0 (the default)
// disables the cache.
func WithResolveCache(ttl time.Duration) PolicyOption {
	return policyOption(func(c *policyConfig) { c.cacheTTL = ttl })
}

// WithClock sets the clock of the resolution cache (default
// time.Now).
func WithClock(now func() time.Time) PolicyOption {
	return policyOption(func(c *policyConfig) { c.now = now })
}

type proxyConfig struct {
	maxTunnels     int
	connectTimeout time.Duration
	idleTimeout    time.Duration
	log            *slog.Logger
	self           []netip.AddrPort
	reg            prometheus.Registerer
	onError        hardening.ErrorHandler
}

// WithErrorHandler sets how the proxy answers a request it refuses or
// cannot forward (default hardening.WriteError, problem+json). The
// handler receives a *ProxyError; nil is an error.
func WithErrorHandler(h hardening.ErrorHandler) ProxyOption {
	return proxyOption(func(c *proxyConfig) { c.onError = h })
}

// WithMaxTunnels limits concurrent CONNECT tunnels plus forwarded
// requests (default 256). Beyond it the proxy answers 503 with reason
// tunnel_limit.
func WithMaxTunnels(n int) ProxyOption {
	return proxyOption(func(c *proxyConfig) { c.maxTunnels = n })
}

// WithConnectTimeout bounds connecting to the destination (default
// 10s); a timeout is answered 504.
func WithConnectTimeout(d time.Duration) ProxyOption {
	return proxyOption(func(c *proxyConfig) { c.connectTimeout = d })
}

// WithIdleTimeout closes a tunnel after no byte moved in either
// direction for d (default 2m); it also bounds the wait for a forwarded
// response's headers.
func WithIdleTimeout(d time.Duration) ProxyOption {
	return proxyOption(func(c *proxyConfig) { c.idleTimeout = d })
}

// WithSelfAddrs declares addresses the proxy is reachable at (beyond
// the listeners given to Serve, which are added automatically), so it never
// connects to itself. An unspecified address (0.0.0.0:8081) covers every
// loopback and local interface address on that port.
func WithSelfAddrs(addrs ...netip.AddrPort) ProxyOption {
	return proxyOption(func(c *proxyConfig) { c.self = append(c.self, addrs...) })
}
