package egress

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/systembuilderhub/hardening/internal/promreg"
)

// Policy decides which destinations may be reached and enforces it at
// dial time. It has two modes (WithMode):
//
//   - ModeAllowlist, the default, for preview sandboxes: a destination is
//     allowed when its normalised host matches an allowlist entry (an exact
//     host, or "*.example.com" matching every subdomain of example.com but
//     not example.com itself) on the entry's port, or for an entry without
//     a port one of the ports (80 and 443 unless WithPorts says otherwise).
//     An empty allowlist denies everything.
//   - ModePublic, for webhooks and user-supplied URLs: any destination on
//     one of the ports is allowed. It takes no allowlist.
//
// In both modes every address the host is or resolves to must be outside
// the special-purpose registries (see SpecialPurpose) and the denylist: one
// such address denies the whole host. In allowlist mode a CIDR given to
// WithAllowCIDR lets allowlisted hosts resolve inside it. Deny wins over
// allow, and a special-purpose address is reported as such before the
// allowlist is consulted (see Decide).
//
// A check alone is not enough against DNS rebinding, so the policy also
// dials: DialContext resolves once, decides on the answer and connects to
// exactly the addresses it decided on, and its net.Dialer re-checks the IP
// of every connect in ControlContext. NewTransport and NewClient build on
// it.
//
// A Policy is immutable and safe for concurrent use.
type Policy struct {
	mode        Mode
	allow       []listRule
	deny        []listRule
	denyCIDR    []netip.Prefix
	allowCIDR   []netip.Prefix
	ports       []int
	resolver    Resolver
	log         *slog.Logger
	decisions   *prometheus.CounterVec
	dialTimeout time.Duration
	cache       *resolveCache // nil: no caching
	// connect makes one TCP connection for a decided dial; nil means the
	// policy's Dialer. Tests route it to connections they control.
	connect func(ctx context.Context, network, address string) (net.Conn, error)
}

// NewPolicy builds a policy from options. It returns an error naming the
// first entry that does not parse, or the option that does not fit the
// mode.
func NewPolicy(opts ...PolicyOption) (*Policy, error) {
	c := policyConfig{mode: ModeAllowlist, ports: []int{80, 443}, dialTimeout: 10 * time.Second, now: time.Now}
	for _, o := range opts {
		if o != nil {
			o.applyPolicy(&c)
		}
	}
	if err := c.check(); err != nil {
		return nil, err
	}
	p := &Policy{
		mode:        c.mode,
		allowCIDR:   slices.Clone(c.allowCIDR),
		ports:       slices.Clone(c.ports),
		resolver:    c.resolver,
		log:         c.log,
		dialTimeout: c.dialTimeout,
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
	if c.now == nil {
		return nil, errors.New("egress: nil clock")
	}
	if c.cacheTTL > 0 {
		p.cache = &resolveCache{ttl: c.cacheTTL, now: c.now, m: map[string]cacheEntry{}}
	}
	for _, port := range p.ports {
		if port < 1 || port > 65535 {
			return nil, fmt.Errorf("egress: invalid port %d", port)
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
		cv, err := promreg.Register(c.reg, cv)
		if err != nil {
			return nil, fmt.Errorf("egress: register egress metrics: %w", err)
		}
		p.decisions = cv
	}
	return p, nil
}

// Mode returns the policy's mode.
func (p *Policy) Mode() Mode { return p.mode }
