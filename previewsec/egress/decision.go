package egress

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
)

// Stable reason codes of a Decision. They are part of the API: logs,
// metrics, the proxy's reason header and HTTP answers carry them.
const (
	// ReasonAllowed: the host is allowlisted (allowlist mode) or the port
	// is allowed (public mode), and every address the host is or resolves
	// to is public (or, in allowlist mode, inside an allowed CIDR).
	ReasonAllowed = "allowed"
	// ReasonNotInAllowlist: allowlist mode, no allowlist entry matches the
	// host. The host is a name (not resolved) or a public address: a
	// special-purpose address is ReasonSpecialPurpose first.
	ReasonNotInAllowlist = "not_in_allowlist"
	// ReasonDenylisted: a denylist entry matches the host, or a denylist
	// CIDR contains one of its addresses. Deny wins over allow.
	ReasonDenylisted = "denylisted"
	// ReasonSpecialPurpose: the host is, or resolves to, a special-purpose
	// address (loopback, private, link-local/metadata, ...; see
	// SpecialPurpose). One such address denies the whole host. Reported in
	// every mode, before the allowlist is consulted.
	ReasonSpecialPurpose = "special_purpose_address"
	// ReasonMalformedHost: the destination is not a clean host name or IP
	// address and port (see NormalizeHost).
	ReasonMalformedHost = "malformed_host"
	// ReasonDNSError: the host name did not resolve.
	ReasonDNSError = "dns_error"
	// ReasonPortNotAllowed: allowlist mode, an allowlist entry matches the
	// host but not the port; public mode, the port is not one of the
	// allowed ports (WithPorts).
	ReasonPortNotAllowed = "port_not_allowed"
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

// DeniedError is returned by the policy's dialers, transports and clients
// when a destination is denied.
type DeniedError struct {
	Decision Decision
}

func (e *DeniedError) Error() string {
	host := e.Decision.Host
	if host == "" {
		host = "(malformed)"
	}
	return fmt.Sprintf("egress: %s denied: %s", net.JoinHostPort(host, strconv.Itoa(e.Decision.Port)), e.Decision.Reason)
}

// ErrDenied matches every *DeniedError with errors.Is.
var ErrDenied = errors.New("egress: denied")

// Is makes errors.Is(err, ErrDenied) true.
func (e *DeniedError) Is(target error) bool { return target == ErrDenied }

// Resolver resolves host names. *net.Resolver implements it; tests
// pass a fixed table.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}
