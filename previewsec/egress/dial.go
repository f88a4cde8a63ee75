package egress

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"syscall"
	"time"
)

// dialKey carries the addresses a dial was decided for, so the
// dialer's ControlContext can insist the connect goes to one of them.
type dialKey struct{}

// Dialer returns a net.Dialer whose ControlContext checks the exact IP of
// every connect attempt against the address-level policy (denylist CIDRs,
// special-purpose registries, allowed CIDRs) just before the socket
// connects, after any DNS resolution. Used on its own it enforces only that
// address-level policy, since it never sees the host name; DialContext adds
// the host rules and the mode. A denied connect fails with a *DeniedError.
func (p *Policy) Dialer() *net.Dialer {
	return &net.Dialer{
		Timeout:        p.dialTimeout,
		KeepAlive:      30 * time.Second,
		ControlContext: p.control,
	}
}

// control is the dialer's ControlContext.
func (p *Policy) control(ctx context.Context, network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		d := Decision{Reason: ReasonMalformedHost}
		p.record(ctx, d)
		return &DeniedError{Decision: d}
	}
	a := ap.Addr()
	d := Decision{Host: a.String(), Port: int(ap.Port()), Addrs: []netip.Addr{a}}
	if reason, rule := p.checkAddr(a); reason != "" {
		d.Reason, d.Rule = reason, rule
		p.record(ctx, d)
		return &DeniedError{Decision: d}
	}
	if allowed, ok := ctx.Value(dialKey{}).([]netip.Addr); ok {
		if !slices.ContainsFunc(allowed, func(b netip.Addr) bool { return b.Unmap() == a.Unmap() }) {
			d.Reason, d.Rule = ReasonNotInAllowlist, "address not in the checked answer"
			p.record(ctx, d)
			return &DeniedError{Decision: d}
		}
	}
	return nil
}

// DialContext connects to address ("host:port") if the policy allows it:
// it decides once (resolving the host), then connects only to the checked
// addresses, in order, each connect re-checked in ControlContext. Only TCP
// networks are supported. It has the signature of
// net.Dialer.DialContext, so it plugs into http.Transport and friends.
func (p *Policy) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return nil, fmt.Errorf("egress: dial: network %q not supported", network)
	}
	d := p.DecideHostPort(ctx, address)
	if !d.Allowed {
		return nil, &DeniedError{Decision: d}
	}
	return p.dialDecided(ctx, network, d)
}

// dialDecided connects to one of the addresses of an allowing decision.
func (p *Policy) dialDecided(ctx context.Context, network string, d Decision) (net.Conn, error) {
	ctx = context.WithValue(ctx, dialKey{}, d.Addrs)
	connect := p.connect
	if connect == nil {
		connect = p.Dialer().DialContext
	}
	var errs []error
	for _, a := range d.Addrs {
		a = a.Unmap()
		if network == "tcp4" && !a.Is4() || network == "tcp6" && !a.Is6() {
			continue
		}
		c, err := connect(ctx, network, net.JoinHostPort(a.String(), strconv.Itoa(d.Port)))
		if err == nil {
			return c, nil
		}
		var denied *DeniedError
		if errors.As(err, &denied) {
			return nil, denied
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	if len(errs) == 0 {
		return nil, fmt.Errorf("egress: dial %s: no %s address", d.Host, network)
	}
	return nil, errors.Join(errs...)
}
