package egress

import (
	"encoding/binary"
	"net/netip"
)

// addrRange is one entry of the special-purpose address tables.
type addrRange struct {
	prefix netip.Prefix
	name   string
}

func mustRanges(entries ...string) []addrRange {
	out := make([]addrRange, 0, len(entries)/2)
	for i := 0; i+1 < len(entries); i += 2 {
		out = append(out, addrRange{prefix: netip.MustParsePrefix(entries[i]), name: entries[i+1]})
	}
	return out
}

// specialV4 is the IANA IPv4 Special-Purpose Address Registry in full
// (including the entries marked globally reachable, such as the AS112 and
// AMT prefixes and the PCP/TURN anycast addresses: a preview sandbox has no
// business with any of them), plus multicast (224.0.0.0/4) from the IPv4
// multicast registry. More specific entries come first so the reported rule
// names the narrowest match.
var specialV4 = mustRanges(
	"0.0.0.0/32", "this host on this network (RFC 1122)",
	"0.0.0.0/8", "this network (RFC 791)",
	"10.0.0.0/8", "private-use (RFC 1918)",
	"100.64.0.0/10", "shared address space (RFC 6598)",
	"127.0.0.0/8", "loopback (RFC 1122)",
	"169.254.0.0/16", "link-local, cloud metadata (RFC 3927)",
	"172.16.0.0/12", "private-use (RFC 1918)",
	"192.0.0.0/29", "IPv4 service continuity prefix (RFC 7335)",
	"192.0.0.8/32", "IPv4 dummy address (RFC 7600)",
	"192.0.0.9/32", "port control protocol anycast (RFC 7723)",
	"192.0.0.10/32", "traversal using relays around NAT anycast (RFC 8155)",
	"192.0.0.170/31", "NAT64/DNS64 discovery (RFC 8880)",
	"192.0.0.0/24", "IETF protocol assignments (RFC 6890)",
	"192.0.2.0/24", "documentation TEST-NET-1 (RFC 5737)",
	"192.31.196.0/24", "AS112-v4 (RFC 7535)",
	"192.52.193.0/24", "AMT (RFC 7450)",
	"192.88.99.0/24", "deprecated 6to4 relay anycast (RFC 7526)",
	"192.168.0.0/16", "private-use (RFC 1918)",
	"192.175.48.0/24", "direct delegation AS112 service (RFC 7534)",
	"198.18.0.0/15", "benchmarking (RFC 2544)",
	"198.51.100.0/24", "documentation TEST-NET-2 (RFC 5737)",
	"203.0.113.0/24", "documentation TEST-NET-3 (RFC 5737)",
	"224.0.0.0/4", "multicast (RFC 5771)",
	"255.255.255.255/32", "limited broadcast (RFC 8190)",
	"240.0.0.0/4", "reserved (RFC 1112)",
)

// specialV6 is the IANA IPv6 Special-Purpose Address Registry in full,
// plus multicast, the deprecated site-local range and the IPv4-compatible
// range. The prefixes that embed an IPv4 address (IPv4-mapped, IPv4-IPv6
// translation, 6to4, Teredo) are not here: embeddedV4 extracts the
// IPv4 address and it is judged by specialV4. Everything outside
// 2000::/3 (global unicast) that is not listed is refused as unallocated.
var specialV6 = mustRanges(
	"::/128", "unspecified address (RFC 4291)",
	"::1/128", "loopback (RFC 4291)",
	"::/96", "deprecated IPv4-compatible address (RFC 4291)",
	"64:ff9b:1::/48", "local-use IPv4/IPv6 translation (RFC 8215)",
	"100::/64", "discard-only (RFC 6666)",
	"100:0:0:1::/64", "dummy IPv6 prefix (RFC 9780)",
	"2001:1::1/128", "port control protocol anycast (RFC 7723)",
	"2001:1::2/128", "traversal using relays around NAT anycast (RFC 8155)",
	"2001:1::3/128", "DNS-SD service registration protocol anycast (RFC 9665)",
	"2001:2::/48", "benchmarking (RFC 5180)",
	"2001:3::/32", "AMT (RFC 7450)",
	"2001:4:112::/48", "AS112-v6 (RFC 7535)",
	"2001:10::/28", "deprecated ORCHID (RFC 4843)",
	"2001:20::/28", "ORCHIDv2 (RFC 7343)",
	"2001:30::/28", "drone remote ID protocol entity tags (RFC 9374)",
	"2001::/23", "IETF protocol assignments (RFC 2928)",
	"2001:db8::/32", "documentation (RFC 3849)",
	"2620:4f:8000::/48", "direct delegation AS112 service (RFC 7534)",
	"3fff::/20", "documentation (RFC 9637)",
	"5f00::/16", "segment routing SIDs (RFC 9602)",
	"fc00::/7", "unique-local (RFC 4193)",
	"fe80::/10", "link-local unicast (RFC 4291)",
	"fec0::/10", "deprecated site-local (RFC 3879)",
	"ff00::/8", "multicast (RFC 4291)",
)

// v4Index and v6Index hold, for each first byte of an address,
// the ranges that may contain it (in table order), so most ordinary
// addresses are judged without scanning the tables.
var v4Index, v6Index = indexRanges(specialV4), indexRanges(specialV6)

func indexRanges(ranges []addrRange) (idx [256][]addrRange) {
	for _, r := range ranges {
		first := r.prefix.Addr().AsSlice()[0]
		span := 1
		if r.prefix.Bits() < 8 {
			span = 1 << (8 - r.prefix.Bits())
		}
		for b := int(first); b < int(first)+span && b < 256; b++ {
			idx[b] = append(idx[b], r)
		}
	}
	return idx
}

var (
	mapped4     = netip.MustParsePrefix("::ffff:0:0/96")
	translated4 = netip.MustParsePrefix("::ffff:0:0:0/96") // SIIT, RFC 2765
	nat64       = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour   = netip.MustParsePrefix("2002::/16")
	teredo      = netip.MustParsePrefix("2001::/32")
	global6     = netip.MustParsePrefix("2000::/3")
)

// embeddedV4 returns the IPv4 addresses an IPv6 address carries when
// it is IPv4-mapped, SIIT-translated, NAT64 well-known prefix, 6to4 or Teredo
// (both the server and the de-obfuscated client address).
func embeddedV4(a netip.Addr) []netip.Addr {
	if !a.Is6() {
		return nil
	}
	b := a.As16()
	v4 := func(off int) netip.Addr { return netip.AddrFrom4([4]byte(b[off : off+4])) }
	switch {
	case mapped4.Contains(a), translated4.Contains(a), nat64.Contains(a):
		return []netip.Addr{v4(12)}
	case sixToFour.Contains(a):
		return []netip.Addr{v4(2)}
	case teredo.Contains(a):
		var client [4]byte
		binary.BigEndian.PutUint32(client[:], ^binary.BigEndian.Uint32(b[12:16]))
		return []netip.Addr{v4(4), netip.AddrFrom4(client)}
	}
	return nil
}

// SpecialPurpose reports whether a is a special-purpose address, one no
// policy lets a destination reach in either mode (outside an allowed
// CIDR), and names the registry entry that matched.
//
// IPv4 addresses are checked against the full IANA IPv4 Special-Purpose
// Address Registry plus multicast. IPv6 addresses are checked against the
// full IANA IPv6 Special-Purpose Address Registry, multicast, site-local and
// anything outside 2000::/3; IPv6 addresses that embed an IPv4 address
// (::ffff:0:0/96, ::ffff:0:0:0/96, 64:ff9b::/96, 2002::/16 and Teredo
// 2001::/32) are judged by the IPv4 address inside (for Teredo, both the
// server and the client address must be ordinary). The zero Addr is special.
func SpecialPurpose(a netip.Addr) (name string, special bool) {
	if !a.IsValid() {
		return "invalid address", true
	}
	a = a.WithZone("")
	if a.Is4() {
		for _, r := range v4Index[a.As4()[0]] {
			if r.prefix.Contains(a) {
				return r.prefix.String() + " " + r.name, true
			}
		}
		return "", false
	}
	if inner := embeddedV4(a); inner != nil {
		for _, v4 := range inner {
			if n, ok := SpecialPurpose(v4); ok {
				return n + " embedded in " + a.String(), true
			}
		}
		return "", false
	}
	for _, r := range v6Index[a.As16()[0]] {
		if r.prefix.Contains(a) {
			return r.prefix.String() + " " + r.name, true
		}
	}
	if !global6.Contains(a) {
		return "outside 2000::/3 global unicast (unallocated)", true
	}
	return "", false
}
