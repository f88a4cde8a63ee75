package egress

import (
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// ErrMalformedHost is returned by NormalizeHost (wrapped, with the cause)
// for anything that is not a clean host name or IP address.
var ErrMalformedHost = errors.New("egress: malformed host")

// idnaProfile maps a host name for lookup (UTS #46, non-transitional, STD3
// letters/digits/hyphen rules, bidi rule, DNS length limits) and returns its
// ASCII (punycode) form.
var idnaProfile = idna.New(
	idna.MapForLookup(),
	idna.Transitional(false),
	idna.BidiRule(),
	idna.VerifyDNSLength(true),
)

// maxHostInput bounds the input NormalizeHost looks at; a DNS name is at most
// 253 octets, so anything much longer is malformed without further work.
const maxHostInput = 1024

// NormalizeHost returns the canonical form of a destination host, the form
// the egress policy matches against:
//
//   - host names are lowercased, lose one trailing dot and are converted to
//     their IDNA ASCII (punycode) form, with every label checked against the
//     letters-digits-hyphen rule and the DNS length limits;
//   - IP addresses are returned in netip's canonical text form (IPv6 without
//     brackets, which are accepted on input). Only the strict dotted-quad
//     IPv4 form is an address: octal ("0177.0.0.1"), hexadecimal
//     ("0x7f.0.0.1"), decimal-integer ("2130706433") and shortened ("127.1")
//     forms, which some resolvers and libraries still accept, are rejected
//     rather than guessed at, as is any host name whose last label is
//     numeric;
//   - userinfo ("user@host"), IPv6 zones ("fe80::1%eth0"), percent-escapes,
//     ports, paths, spaces and control characters are rejected.
//
// Errors wrap ErrMalformedHost.
func NormalizeHost(host string) (string, error) {
	h, _, err := normalizeHostAddr(host)
	return h, err
}

// normalizeHostAddr is NormalizeHost that also returns the parsed address
// when the host is an IP literal (the zero Addr otherwise).
func normalizeHostAddr(host string) (string, netip.Addr, error) {
	if host == "" {
		return "", netip.Addr{}, malformed("empty host")
	}
	if len(host) > maxHostInput {
		return "", netip.Addr{}, malformed("host too long")
	}
	if !utf8.ValidString(host) {
		return "", netip.Addr{}, malformed("invalid UTF-8")
	}
	for i := 0; i < len(host); i++ {
		switch c := host[i]; {
		case c == '@':
			return "", netip.Addr{}, malformed("userinfo is not allowed")
		case c == '%':
			return "", netip.Addr{}, malformed("zones and percent-escapes are not allowed")
		case c <= ' ' || c == 0x7f:
			return "", netip.Addr{}, malformed("space or control character")
		case c == '/' || c == '\\' || c == '?' || c == '#':
			return "", netip.Addr{}, malformed("not a bare host")
		}
	}
	if host[0] == '[' {
		if host[len(host)-1] != ']' {
			return "", netip.Addr{}, malformed("unbalanced brackets")
		}
		a, err := netip.ParseAddr(host[1 : len(host)-1])
		if err != nil || !a.Is6() {
			return "", netip.Addr{}, malformed("brackets hold no IPv6 address")
		}
		return a.String(), a, nil
	}
	if maybeIP(host) {
		if a, err := netip.ParseAddr(host); err == nil {
			return a.String(), a, nil
		}
	}
	if strings.ContainsAny(host, "[]:") {
		return "", netip.Addr{}, malformed("not a host name or IP address")
	}
	var ascii string
	if plainASCII(host) {
		// Fast path: already lowercase letters, digits, dots and hyphens,
		// no punycode label: UTS #46 mapping would not change it.
		ascii = strings.TrimSuffix(host, ".")
	} else {
		var err error
		if ascii, err = toASCII(host); err != nil {
			return "", netip.Addr{}, err
		}
	}
	// UTS #46 mapping turns full-width digits and ideographic full stops
	// into ASCII, so the mapped form may be an address or a numeric form.
	if !maybeIP(ascii) {
		// not an address: fall through to the host name checks
	} else if a, err := netip.ParseAddr(ascii); err == nil {
		if !a.Is4() {
			return "", netip.Addr{}, malformed("not a host name or IP address")
		}
		return a.String(), a, nil
	}
	if err := checkHostname(ascii); err != nil {
		return "", netip.Addr{}, err
	}
	return ascii, netip.Addr{}, nil
}

// maybeIP is a cheap filter before netip.ParseAddr: an address
// starts with a digit or holds a colon.
func maybeIP(s string) bool {
	return s != "" && (s[0] >= '0' && s[0] <= '9' || strings.IndexByte(s, ':') >= 0)
}

// plainASCII reports whether h holds only a-z, 0-9, '.' and '-' and
// no punycode ("xn--") label.
func plainASCII(h string) bool {
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
			return false
		}
	}
	return !strings.HasPrefix(h, "xn--") && !strings.Contains(h, ".xn--")
}

// labelSeparators are the full stops UTS #46 maps to '.'.
var labelSeparators = strings.NewReplacer("\u3002", ".", "\uff0e", ".", "\uff61", ".")

// toASCII maps a host name label by label: plain ASCII labels are
// lowercased (so names such as "r3---sn-abc.example" that the strict
// UTS #46 hyphen rule would refuse stay usable), other labels go through
// IDNA lookup mapping and validation, punycode labels included. One
// trailing dot is dropped.
func toASCII(host string) (string, error) {
	labels := strings.Split(labelSeparators.Replace(host), ".")
	if len(labels) > 1 && labels[len(labels)-1] == "" {
		labels = labels[:len(labels)-1]
	}
	for i, l := range labels {
		if l == "" {
			return "", malformed("empty label")
		}
		plain := true
		for j := 0; j < len(l) && plain; j++ {
			plain = l[j] < 0x80
		}
		if plain && !strings.HasPrefix(strings.ToLower(l), "xn--") {
			labels[i] = strings.ToLower(l)
			continue
		}
		a, err := idnaProfile.ToASCII(l)
		if err != nil || a == "" {
			return "", malformed("invalid international name")
		}
		labels[i] = strings.ToLower(a)
	}
	return strings.Join(labels, "."), nil
}

// checkHostname checks an ASCII, lowercased host name: 1..253 octets,
// labels of 1..63 letters, digits and inner hyphens, last label not numeric
// (a numeric or hexadecimal last label makes it an IPv4 form some parsers
// would accept, so it is refused).
func checkHostname(h string) error {
	if len(h) == 0 || len(h) > 253 {
		return malformed("host name length")
	}
	last := ""
	for label := range strings.SplitSeq(h, ".") {
		if len(label) == 0 || len(label) > 63 {
			return malformed("empty or long label")
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return malformed("label starts or ends with a hyphen")
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return malformed("invalid character in host name")
			}
		}
		last = label
	}
	if numericLabel(last) {
		return malformed("numeric top-level label (non-canonical IPv4 form)")
	}
	return nil
}

// numericLabel reports whether a label reads as a number in any base
// an IPv4 parser might accept: decimal, octal, or 0x-prefixed hexadecimal.
func numericLabel(l string) bool {
	if l == "" {
		return false
	}
	if strings.HasPrefix(l, "0x") {
		for i := 2; i < len(l); i++ {
			c := l[i]
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
				return false
			}
		}
		return true
	}
	for i := 0; i < len(l); i++ {
		if l[i] < '0' || l[i] > '9' {
			return false
		}
	}
	return true
}

// splitHostPort splits "host:port", "[v6]:port", a bare host or a bare
// IPv6 address. defaultPort is used when no port is given; 0 means a port is
// required.
func splitHostPort(hostport string, defaultPort int) (host string, port int, err error) {
	if hostport == "" {
		return "", 0, malformed("empty destination")
	}
	if _, err := netip.ParseAddr(hostport); err == nil && strings.Contains(hostport, ":") {
		host = hostport // bare IPv6
	} else if hostport[0] == '[' {
		end := strings.IndexByte(hostport, ']')
		if end < 0 {
			return "", 0, malformed("unbalanced brackets")
		}
		host = hostport[:end+1]
		rest := hostport[end+1:]
		if rest != "" {
			if rest[0] != ':' {
				return "", 0, malformed("junk after address")
			}
			p, err := parsePort(rest[1:])
			if err != nil {
				return "", 0, err
			}
			return host, p, nil
		}
	} else if i := strings.LastIndexByte(hostport, ':'); i >= 0 {
		if strings.IndexByte(hostport[:i], ':') >= 0 {
			return "", 0, malformed("unbracketed IPv6 address with port")
		}
		p, err := parsePort(hostport[i+1:])
		if err != nil {
			return "", 0, err
		}
		return hostport[:i], p, nil
	} else {
		host = hostport
	}
	if defaultPort == 0 {
		return "", 0, malformed("missing port")
	}
	return host, defaultPort, nil
}

// parsePort parses a decimal port 1..65535 without sign or leading
// zeros.
func parsePort(s string) (int, error) {
	if s == "" || len(s) > 5 || (len(s) > 1 && s[0] == '0') {
		return 0, malformed("invalid port")
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, malformed("invalid port")
		}
	}
	p, err := strconv.Atoi(s)
	if err != nil || p < 1 || p > 65535 {
		return 0, malformed("invalid port")
	}
	return p, nil
}

// malformed wraps ErrMalformedHost with a cause.
func malformed(why string) error {
	return &hostError{why: why}
}

type hostError struct{ why string }

func (e *hostError) Error() string { return ErrMalformedHost.Error() + ": " + e.why }
func (e *hostError) Unwrap() error { return ErrMalformedHost }
