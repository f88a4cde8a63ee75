package egress

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// listRule is one parsed allowlist or denylist entry.
type listRule struct {
	raw      string
	host     string // normalised; for a wildcard, the suffix without "*."
	wildcard bool
	port     int // 0: any default port (allowlist) / every port (denylist)
}

func (r listRule) matchHost(host string) bool {
	if r.wildcard {
		return len(host) > len(r.host)+1 && strings.HasSuffix(host, r.host) && host[len(host)-len(r.host)-1] == '.'
	}
	return host == r.host
}

// ParseAllowlist splits a comma-separated allowlist, the form an
// application reads from its configuration, into entries for WithAllow:
// spaces are trimmed and empty entries dropped. The error names the first
// entry that does not parse. An empty s is an empty allowlist.
func ParseAllowlist(s string) ([]string, error) {
	entries := splitList(s)
	for _, e := range entries {
		if _, err := parseRules(e); err != nil {
			return nil, fmt.Errorf("egress: allowlist entry %q: %w", e, err)
		}
	}
	return entries, nil
}

// ParseDenylist is ParseAllowlist for WithDeny: entries may also be CIDRs.
func ParseDenylist(s string) ([]string, error) {
	entries := splitList(s)
	for _, e := range entries {
		if _, _, err := parseDenyEntry(e); err != nil {
			return nil, fmt.Errorf("egress: denylist entry %q: %w", e, err)
		}
	}
	return entries, nil
}

// parseDenyEntry parses one denylist entry: a CIDR, or host rules.
func parseDenyEntry(e string) (netip.Prefix, []listRule, error) {
	if pfx, err := netip.ParsePrefix(strings.TrimSpace(e)); err == nil {
		return pfx.Masked(), nil, nil
	}
	rules, err := parseRules(e)
	return netip.Prefix{}, rules, err
}

// splitList splits a comma list, trimming spaces and dropping empty
// entries.
func splitList(s string) []string {
	var out []string
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// parseRules parses one list entry (a comma list is split first).
func parseRules(entry string) ([]listRule, error) {
	var out []listRule
	for _, e := range splitList(entry) {
		r := listRule{raw: e}
		hostport := e
		if strings.HasPrefix(hostport, "*.") {
			r.wildcard = true
			hostport = hostport[2:]
		}
		host, port, err := splitHostPort(hostport, -1)
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
