package egress

import (
	"context"
	"log/slog"
	"net/netip"
	"net/url"
	"slices"
	"strings"
)

// Decide checks host and port, in this order: host normalisation
// (malformed_host); the denylist's host entries (denylisted); for an IP
// address, the denylist's CIDRs and the special-purpose registries
// (denylisted, special_purpose_address); the mode: in allowlist mode the
// allowlist and its ports (not_in_allowlist, port_not_allowed), in public
// mode the ports (port_not_allowed); for a host name, DNS resolution
// (dns_error) and then the denylist's CIDRs and the registries on every
// address. So a special-purpose address is reported as such in every mode
// before the allowlist is consulted, and not_in_allowlist names a public
// address or a host name. In allowlist mode a host name off the allowlist
// is not resolved: no DNS query is made for it.
//
// Decide resolves the host the way the dialer does. It never returns an
// error: a failure is a denying Decision.
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
	u, err := url.Parse(rawURL)
	if err != nil {
		d := Decision{Reason: ReasonMalformedHost}
		p.record(ctx, d)
		return d
	}
	return p.decideTarget(ctx, u)
}

// decideTarget is Decide for the destination of a parsed URL: a redirect
// target or a proxied request.
func (p *Policy) decideTarget(ctx context.Context, u *url.URL) Decision {
	host, port, err := urlTarget(u)
	if err != nil {
		d := Decision{Reason: ReasonMalformedHost}
		p.record(ctx, d)
		return d
	}
	return p.Decide(ctx, host, port)
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
	if addr.IsValid() {
		if reason, rule := p.checkAddr(addr); reason != "" {
			d.Reason, d.Rule, d.Addrs = reason, rule, []netip.Addr{addr}
			return d
		}
	}
	rule, reason := p.admit(host, port)
	if reason != "" {
		d.Reason = reason
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
		for _, a := range d.Addrs {
			if reason, rule := p.checkAddr(a); reason != "" {
				d.Reason, d.Rule = reason, rule
				return d
			}
		}
	}
	d.Allowed, d.Reason, d.Rule = true, ReasonAllowed, rule
	return d
}

// admit applies the mode to host and port: the allowlist entry that allows
// them (allowlist mode), or an empty rule (public mode); a reason when
// they are not allowed.
func (p *Policy) admit(host string, port int) (rule, reason string) {
	if p.mode == ModePublic {
		if !slices.Contains(p.ports, port) {
			return "", ReasonPortNotAllowed
		}
		return "", ""
	}
	hostMatched := false
	for _, r := range p.allow {
		if !r.matchHost(host) {
			continue
		}
		hostMatched = true
		if r.port == port || (r.port == 0 && slices.Contains(p.ports, port)) {
			return r.raw, ""
		}
	}
	if hostMatched {
		return "", ReasonPortNotAllowed
	}
	return "", ReasonNotInAllowlist
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
