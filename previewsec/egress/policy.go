package egress

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Policy decides which destinations a preview sandbox may reach and
// enforces it at dial time.
//
// A destination is allowed when its normalised host matches an allowlist
// entry (an exact host, or "*.example.com" matching every subdomain of
// example.com but not example.com itself), no denylist entry matches it, the
// port is the entry's port (or, for an entry without a port, one of the
// default ports, 80 and 443 unless WithDefaultPorts says otherwise),
// and every address the host resolves to is ordinary: an allowlisted name
// that resolves to a special-purpose address (see SpecialPurpose) is denied
// unless the address is inside a CIDR given to WithAllowCIDR. An empty
// allowlist denies everything. Deny wins over allow.
//
// A check alone is not enough against DNS rebinding, so the policy also
// dials: DialContext resolves once, decides on the answer and connects to
// exactly the addresses it decided on, and its net.Dialer re-checks the IP
// of every connect in ControlContext. Transport and Client build on it.
//
// An Policy is immutable and safe for concurrent use.
type Policy struct {
	allow        []listRule
	deny         []listRule
	denyCIDR     []netip.Prefix
	allowCIDR    []netip.Prefix
	defaultPorts []int
	resolver     Resolver
	log          *slog.Logger
	decisions    *prometheus.CounterVec
	dialTimeout  time.Duration
	cache        *resolveCache // nil: no caching
}

// NewPolicy builds a policy from options. It returns an error naming
// the first entry that does not parse.
func NewPolicy(opts ...PolicyOption) (*Policy, error) {
	c := policyConfig{defaultPorts: []int{80, 443}, dialTimeout: 10 * time.Second}
	for _, o := range opts {
		if o != nil {
			o.applyPolicy(&c)
		}
	}
	p := &Policy{
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
		return nil, errors.New("egress: dial timeout must be positive")
	}
	if c.cacheTTL < 0 {
		return nil, errors.New("egress: resolve cache TTL must not be negative")
	}
	if c.cacheTTL > 0 {
		if c.now == nil {
			c.now = time.Now
		}
		p.cache = &resolveCache{ttl: c.cacheTTL, now: c.now, m: map[string]cacheEntry{}}
	}
	for _, port := range p.defaultPorts {
		if port < 1 || port > 65535 {
			return nil, fmt.Errorf("egress: invalid default egress port %d", port)
		}
	}
	for i, pfx := range p.allowCIDR {
		if !pfx.IsValid() {
			return nil, errors.New("egress: invalid allowed CIDR")
		}
		p.allowCIDR[i] = pfx.Masked()
	}
	for _, e := range c.allow {
		rules, err := parseRules(e)
		if err != nil {
			return nil, fmt.Errorf("egress: allowlist entry %q: %w", e, err)
		}
		p.allow = append(p.allow, rules...)
	}
	for _, e := range c.deny {
		pfx, rules, err := parseDenyEntry(e)
		if err != nil {
			return nil, fmt.Errorf("egress: denylist entry %q: %w", e, err)
		}
		if pfx.IsValid() {
			p.denyCIDR = append(p.denyCIDR, pfx)
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
				return nil, fmt.Errorf("egress: register egress metrics: %w", err)
			}
			existing, ok := are.ExistingCollector.(*prometheus.CounterVec)
			if !ok {
				return nil, fmt.Errorf("egress: register egress metrics: %w", err)
			}
			cv = existing
		}
		p.decisions = cv
	}
	return p, nil
}

// Decide checks host and port: host normalisation, the denylist, the
// allowlist and its ports, then DNS resolution and the special-purpose
// registries on every address. It resolves the host the way the dialer
// does. Decide never returns an error: a failure is a denying Decision.
func (p *Policy) Decide(ctx context.Context, host string, port int) Decision {
	d := p.decide(ctx, host, port)
	p.record(ctx, d)
	return d
}

// DecideHostPort is Decide for "host:port" (or "[v6]:port").
func (p *Policy) DecideHostPort(ctx context.Context, hostport string) Decision {
	host, port, err := splitHostPort(hostport, 0)
	if err != nil {
		d := Decision{Reason: ReasonMalformedHost}
		p.record(ctx, d)
		return d
	}
	return p.Decide(ctx, host, port)
}

// DecideURL is Decide for an http or https URL; the port defaults by
// scheme. Other schemes and URLs carrying userinfo are malformed.
func (p *Policy) DecideURL(ctx context.Context, rawURL string) Decision {
	host, port, err := urlHostPort(rawURL)
	if err != nil {
		d := Decision{Reason: ReasonMalformedHost}
		p.record(ctx, d)
		return d
	}
	return p.Decide(ctx, host, port)
}

func urlHostPort(rawURL string) (string, int, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", 0, malformed("unparsable URL")
	}
	return urlTarget(u)
}

func urlTarget(u *url.URL) (string, int, error) {
	def := 0
	switch strings.ToLower(u.Scheme) {
	case "http":
		def = 80
	case "https":
		def = 443
	default:
		return "", 0, malformed("scheme must be http or https")
	}
	if u.User != nil || u.Opaque != "" {
		return "", 0, malformed("userinfo is not allowed")
	}
	return splitHostPort(u.Host, def)
}

func (p *Policy) decide(ctx context.Context, rawHost string, port int) Decision {
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
	var match *listRule
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
func (p *Policy) checkAddr(a netip.Addr) (reason, rule string) {
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
func (p *Policy) record(ctx context.Context, d Decision) {
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
