package previewsec

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Stable reason codes of a Decision. They are part of the API: logs,
// metrics, the proxy's reason header and HTTP answers carry them.
const (
	// ReasonAllowed: the host is allowlisted and every address it resolves
	// to is ordinary (or inside an operator-allowed CIDR).
	ReasonAllowed = "allowed"
	// ReasonNotInAllowlist: no allowlist entry matches the host.
	ReasonNotInAllowlist = "not_in_allowlist"
	// ReasonDenylisted: a denylist entry matches the host, or a denylist
	// CIDR contains one of its addresses. Deny wins over allow.
	ReasonDenylisted = "denylisted"
	// ReasonSpecialPurpose: the host is, or resolves to, a special-purpose
	// address (loopback, private, link-local/metadata, ...). One such
	// address denies the whole host.
	ReasonSpecialPurpose = "special_purpose_address"
	// ReasonMalformedHost: the destination is not a clean host name or IP
	// address and port (see NormalizeHost).
	ReasonMalformedHost = "malformed_host"
	// ReasonDNSError: the host name did not resolve.
	ReasonDNSError = "dns_error"
	// ReasonPortNotAllowed: an allowlist entry matches the host but not the
	// port.
	ReasonPortNotAllowed = "port_not_allowed"
)

// Environment variables read by EgressPolicyFromEnv.
const (
	EnvEgressAllowlist = "PREVIEW_EGRESS_ALLOWLIST"
	EnvEgressDenylist  = "PREVIEW_EGRESS_DENYLIST"
)

// Decision is the outcome of an egress check.
type Decision struct {
	// Allowed reports whether the destination may be reached.
	Allowed bool `json:"allowed"`
	// Reason is one of the Reason* codes.
	Reason string `json:"reason"`
	// Rule is the allowlist or denylist entry, or the special-purpose
	// registry entry, that decided; empty when none did.
	Rule string `json:"rule,omitempty"`
	// Host is the normalised host (see NormalizeHost); empty when the host
	// was malformed.
	Host string `json:"host"`
	// Port is the destination port.
	Port int `json:"port"`
	// Addrs are the addresses the host resolved to (the literal address for
	// an IP host). A dial made for this decision goes to these addresses and
	// no others.
	Addrs []netip.Addr `json:"addrs"`
}

// EgressDeniedError is returned by the policy's dialers and clients when a
// destination is denied.
type EgressDeniedError struct {
	Decision Decision
}

func (e *EgressDeniedError) Error() string {
	host := e.Decision.Host
	if host == "" {
		host = "(malformed)"
	}
	return fmt.Sprintf("previewsec: egress to %s denied: %s", net.JoinHostPort(host, strconv.Itoa(e.Decision.Port)), e.Decision.Reason)
}

// ErrEgressDenied matches every *EgressDeniedError with errors.Is.
var ErrEgressDenied = errors.New("previewsec: egress denied")

// Is makes errors.Is(err, ErrEgressDenied) true.
func (e *EgressDeniedError) Is(target error) bool { return target == ErrEgressDenied }

// EgressResolver resolves host names. *net.Resolver implements it; tests
// pass a fixed table.
type EgressResolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// egressRule is one parsed allowlist or denylist entry.
type egressRule struct {
	raw      string
	host     string // normalised; for a wildcard, the suffix without "*."
	wildcard bool
	port     int // 0: any default port (allowlist) / every port (denylist)
}

func (r egressRule) matchHost(host string) bool {
	if r.wildcard {
		return len(host) > len(r.host)+1 && strings.HasSuffix(host, r.host) && host[len(host)-len(r.host)-1] == '.'
	}
	return host == r.host
}

// EgressPolicy decides which destinations a preview sandbox may reach and
// enforces it at dial time.
//
// A destination is allowed when its normalised host matches an allowlist
// entry (an exact host, or "*.example.com" matching every subdomain of
// example.com but not example.com itself), no denylist entry matches it, the
// port is the entry's port (or, for an entry without a port, one of the
// default ports, 80 and 443 unless WithEgressDefaultPorts says otherwise),
// and every address the host resolves to is ordinary: an allowlisted name
// that resolves to a special-purpose address (see SpecialPurpose) is denied
// unless the address is inside a CIDR given to WithEgressAllowCIDR. An empty
// allowlist denies everything. Deny wins over allow.
//
// A check alone is not enough against DNS rebinding, so the policy also
// dials: DialContext resolves once, decides on the answer and connects to
// exactly the addresses it decided on, and its net.Dialer re-checks the IP
// of every connect in ControlContext. Transport and Client build on it.
//
// An EgressPolicy is immutable and safe for concurrent use.
type EgressPolicy struct {
	allow        []egressRule
	deny         []egressRule
	denyCIDR     []netip.Prefix
	allowCIDR    []netip.Prefix
	defaultPorts []int
	resolver     EgressResolver
	log          *slog.Logger
	decisions    *prometheus.CounterVec
	dialTimeout  time.Duration
	cache        *egressResolveCache // nil: no caching
}

type egressConfig struct {
	allow, deny  []string
	allowCIDR    []netip.Prefix
	defaultPorts []int
	resolver     EgressResolver
	log          *slog.Logger
	reg          prometheus.Registerer
	dialTimeout  time.Duration
	cacheTTL     time.Duration
	now          func() time.Time
}

// EgressOption configures an EgressPolicy.
type EgressOption func(*egressConfig)

// WithEgressAllow adds allowlist entries: "host", "*.domain", either with an
// optional ":port", or an IP address ("203.0.113.7", "[2001:db8::1]:443").
func WithEgressAllow(entries ...string) EgressOption {
	return func(c *egressConfig) { c.allow = append(c.allow, entries...) }
}

// WithEgressDeny adds denylist entries: the allowlist forms, and CIDRs
// ("198.51.100.0/24") that deny any host resolving into them.
func WithEgressDeny(entries ...string) EgressOption {
	return func(c *egressConfig) { c.deny = append(c.deny, entries...) }
}

// WithEgressAllowCIDR lets allowlisted hosts resolve to special-purpose
// addresses inside these prefixes (an internal API on 10.1.2.0/24, say).
// It does not allowlist any host by itself. Use sparingly.
func WithEgressAllowCIDR(prefixes ...netip.Prefix) EgressOption {
	return func(c *egressConfig) { c.allowCIDR = append(c.allowCIDR, prefixes...) }
}

// WithEgressDefaultPorts sets the ports an allowlist entry without a port
// allows. The default is 80 and 443.
func WithEgressDefaultPorts(ports ...int) EgressOption {
	return func(c *egressConfig) { c.defaultPorts = append([]int(nil), ports...) }
}

// WithEgressResolver sets the resolver (default net.DefaultResolver).
func WithEgressResolver(r EgressResolver) EgressOption {
	return func(c *egressConfig) { c.resolver = r }
}

// WithEgressLogger logs every decision (host, port, decision, reason, rule)
// to l: allowed at Debug, denied at Warn. nil (the default) discards.
func WithEgressLogger(l *slog.Logger) EgressOption {
	return func(c *egressConfig) { c.log = l }
}

// WithEgressRegisterer counts decisions in
// hardening_previewsec_egress_decisions_total{decision,reason} on reg.
// nil (the default) means no metrics. Policies sharing a registerer share
// the counter.
func WithEgressRegisterer(reg prometheus.Registerer) EgressOption {
	return func(c *egressConfig) { c.reg = reg }
}

// WithEgressDialTimeout bounds each connect attempt of the policy's dialer
// (default 10s).
func WithEgressDialTimeout(d time.Duration) EgressOption {
	return func(c *egressConfig) { c.dialTimeout = d }
}

// WithEgressResolveCache keeps successful DNS answers for ttl (at most 4096
// names), so repeated decisions for the same host skip the resolver. The
// decision and the dial still use one and the same answer, so caching does
// not weaken the rebinding protection; it only delays seeing a changed
// answer by up to ttl. Failed lookups are not cached. 0 (the default)
// disables the cache.
func WithEgressResolveCache(ttl time.Duration) EgressOption {
	return func(c *egressConfig) { c.cacheTTL = ttl }
}

// WithEgressClock sets the clock of the resolution cache (default
// time.Now).
func WithEgressClock(now func() time.Time) EgressOption {
	return func(c *egressConfig) { c.now = now }
}

// NewEgressPolicy builds a policy from options. It returns an error naming
// the first entry that does not parse.
func NewEgressPolicy(opts ...EgressOption) (*EgressPolicy, error) {
	c := egressConfig{defaultPorts: []int{80, 443}, dialTimeout: 10 * time.Second}
	for _, o := range opts {
		o(&c)
	}
	p := &EgressPolicy{
		allowCIDR:    slices.Clone(c.allowCIDR),
		defaultPorts: slices.Clone(c.defaultPorts),
		resolver:     c.resolver,
		log:          c.log,
		dialTimeout:  c.dialTimeout,
	}
	if p.resolver == nil {
		p.resolver = net.DefaultResolver
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if p.dialTimeout <= 0 {
		return nil, errors.New("previewsec: egress dial timeout must be positive")
	}
	if c.cacheTTL < 0 {
		return nil, errors.New("previewsec: egress resolve cache TTL must not be negative")
	}
	if c.cacheTTL > 0 {
		if c.now == nil {
			c.now = time.Now
		}
		p.cache = &egressResolveCache{ttl: c.cacheTTL, now: c.now, m: map[string]egressCacheEntry{}}
	}
	for _, port := range p.defaultPorts {
		if port < 1 || port > 65535 {
			return nil, fmt.Errorf("previewsec: invalid default egress port %d", port)
		}
	}
	for i, pfx := range p.allowCIDR {
		if !pfx.IsValid() {
			return nil, errors.New("previewsec: invalid allowed CIDR")
		}
		p.allowCIDR[i] = pfx.Masked()
	}
	for _, e := range c.allow {
		rules, err := egressParseRules(e, false)
		if err != nil {
			return nil, fmt.Errorf("previewsec: egress allowlist entry %q: %w", e, err)
		}
		p.allow = append(p.allow, rules...)
	}
	for _, e := range c.deny {
		if pfx, err := netip.ParsePrefix(strings.TrimSpace(e)); err == nil {
			p.denyCIDR = append(p.denyCIDR, pfx.Masked())
			continue
		}
		rules, err := egressParseRules(e, true)
		if err != nil {
			return nil, fmt.Errorf("previewsec: egress denylist entry %q: %w", e, err)
		}
		p.deny = append(p.deny, rules...)
	}
	if c.reg != nil {
		cv := prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hardening_previewsec_egress_decisions_total",
			Help: "Egress decisions of preview sandboxes, by decision (allow or deny) and reason code.",
		}, []string{"decision", "reason"})
		if err := c.reg.Register(cv); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return nil, fmt.Errorf("previewsec: register egress metrics: %w", err)
			}
			existing, ok := are.ExistingCollector.(*prometheus.CounterVec)
			if !ok {
				return nil, fmt.Errorf("previewsec: register egress metrics: %w", err)
			}
			cv = existing
		}
		p.decisions = cv
	}
	return p, nil
}

// EgressPolicyFromEnv builds a policy from PREVIEW_EGRESS_ALLOWLIST and
// PREVIEW_EGRESS_DENYLIST (comma-separated entries, see WithEgressAllow and
// WithEgressDeny; unset or empty allowlist = deny everything), then applies
// opts. The error names the variable holding a bad entry.
func EgressPolicyFromEnv(opts ...EgressOption) (*EgressPolicy, error) {
	allow := egressSplitList(os.Getenv(EnvEgressAllowlist))
	deny := egressSplitList(os.Getenv(EnvEgressDenylist))
	for _, e := range allow {
		if _, err := egressParseRules(e, false); err != nil {
			return nil, fmt.Errorf("previewsec: %s: entry %q: %w", EnvEgressAllowlist, e, err)
		}
	}
	for _, e := range deny {
		if _, err := netip.ParsePrefix(e); err == nil {
			continue
		}
		if _, err := egressParseRules(e, true); err != nil {
			return nil, fmt.Errorf("previewsec: %s: entry %q: %w", EnvEgressDenylist, e, err)
		}
	}
	return NewEgressPolicy(append([]EgressOption{WithEgressAllow(allow...), WithEgressDeny(deny...)}, opts...)...)
}

func egressSplitList(s string) []string {
	var out []string
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// egressParseRules parses one list entry (a comma list is split first).
func egressParseRules(entry string, deny bool) ([]egressRule, error) {
	var out []egressRule
	for _, e := range egressSplitList(entry) {
		r := egressRule{raw: e}
		hostport := e
		if strings.HasPrefix(hostport, "*.") {
			r.wildcard = true
			hostport = hostport[2:]
		}
		host, port, err := egressSplitHostPort(hostport, -1)
		if err != nil {
			return nil, err
		}
		if port > 0 {
			r.port = port
		}
		norm, addr, err := normalizeHostAddr(host)
		if err != nil {
			return nil, err
		}
		if r.wildcard && addr.IsValid() {
			return nil, errors.New("a wildcard needs a domain, not an address")
		}
		if strings.Contains(norm, "*") {
			return nil, errors.New("only a leading \"*.\" wildcard is supported")
		}
		r.host = norm
		out = append(out, r)
	}
	if len(out) == 0 {
		return nil, errors.New("empty entry")
	}
	return out, nil
}

// Decide checks host and port: host normalisation, the denylist, the
// allowlist and its ports, then DNS resolution and the special-purpose
// registries on every address. It resolves the host the way the dialer
// does. Decide never returns an error: a failure is a denying Decision.
func (p *EgressPolicy) Decide(ctx context.Context, host string, port int) Decision {
	d := p.decide(ctx, host, port)
	p.record(ctx, d)
	return d
}

// DecideHostPort is Decide for "host:port" (or "[v6]:port").
func (p *EgressPolicy) DecideHostPort(ctx context.Context, hostport string) Decision {
	host, port, err := egressSplitHostPort(hostport, 0)
	if err != nil {
		d := Decision{Reason: ReasonMalformedHost}
		p.record(ctx, d)
		return d
	}
	return p.Decide(ctx, host, port)
}

// DecideURL is Decide for an http or https URL; the port defaults by
// scheme. Other schemes and URLs carrying userinfo are malformed.
func (p *EgressPolicy) DecideURL(ctx context.Context, rawURL string) Decision {
	host, port, err := egressURLHostPort(rawURL)
	if err != nil {
		d := Decision{Reason: ReasonMalformedHost}
		p.record(ctx, d)
		return d
	}
	return p.Decide(ctx, host, port)
}

func egressURLHostPort(rawURL string) (string, int, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", 0, egressMalformed("unparsable URL")
	}
	return egressURLTarget(u)
}

func egressURLTarget(u *url.URL) (string, int, error) {
	def := 0
	switch strings.ToLower(u.Scheme) {
	case "http":
		def = 80
	case "https":
		def = 443
	default:
		return "", 0, egressMalformed("scheme must be http or https")
	}
	if u.User != nil || u.Opaque != "" {
		return "", 0, egressMalformed("userinfo is not allowed")
	}
	return egressSplitHostPort(u.Host, def)
}

func (p *EgressPolicy) decide(ctx context.Context, rawHost string, port int) Decision {
	d := Decision{Port: port}
	host, addr, err := normalizeHostAddr(rawHost)
	if err != nil || port < 1 || port > 65535 {
		d.Reason = ReasonMalformedHost
		return d
	}
	d.Host = host
	for _, r := range p.deny {
		if r.matchHost(host) && (r.port == 0 || r.port == port) {
			d.Reason, d.Rule = ReasonDenylisted, r.raw
			return d
		}
	}
	var match *egressRule
	hostMatched := false
	for i := range p.allow {
		r := &p.allow[i]
		if !r.matchHost(host) {
			continue
		}
		hostMatched = true
		if r.port == port || (r.port == 0 && slices.Contains(p.defaultPorts, port)) {
			match = r
			break
		}
	}
	if match == nil {
		d.Reason = ReasonNotInAllowlist
		if hostMatched {
			d.Reason = ReasonPortNotAllowed
		}
		return d
	}
	if addr.IsValid() {
		d.Addrs = []netip.Addr{addr}
	} else {
		addrs, err := p.lookup(ctx, host)
		if err != nil || len(addrs) == 0 {
			d.Reason = ReasonDNSError
			return d
		}
		d.Addrs = addrs
	}
	for _, a := range d.Addrs {
		if reason, rule := p.checkAddr(a); reason != "" {
			d.Reason, d.Rule = reason, rule
			return d
		}
	}
	d.Allowed, d.Reason, d.Rule = true, ReasonAllowed, match.raw
	return d
}

// checkAddr applies the address-level policy (denylist CIDRs, then the
// special-purpose registries minus the allowed CIDRs) to one address. It
// returns an empty reason when the address may be dialled.
func (p *EgressPolicy) checkAddr(a netip.Addr) (reason, rule string) {
	if !a.IsValid() || a.Zone() != "" {
		return ReasonSpecialPurpose, "invalid or zoned address"
	}
	um := a.Unmap()
	for _, pfx := range p.denyCIDR {
		if pfx.Contains(a) || pfx.Contains(um) {
			return ReasonDenylisted, pfx.String()
		}
	}
	name, special := SpecialPurpose(a)
	if !special {
		return "", ""
	}
	for _, pfx := range p.allowCIDR {
		if pfx.Contains(a) || pfx.Contains(um) {
			return "", ""
		}
	}
	return ReasonSpecialPurpose, name
}

// record logs and counts a decision.
func (p *EgressPolicy) record(ctx context.Context, d Decision) {
	decision := "deny"
	level := slog.LevelWarn
	if d.Allowed {
		decision, level = "allow", slog.LevelDebug
	}
	if p.decisions != nil {
		p.decisions.WithLabelValues(decision, d.Reason).Inc()
	}
	if p.log.Enabled(ctx, level) {
		p.log.LogAttrs(ctx, level, "egress decision",
			slog.String("host", d.Host), slog.Int("port", d.Port),
			slog.String("decision", decision), slog.String("reason", d.Reason),
			slog.String("rule", d.Rule))
	}
}
