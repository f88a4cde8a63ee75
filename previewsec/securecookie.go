package previewsec

import (
	"net/http"
	"net/netip"
	"strings"
)

// SecureFromConnection returns a function for WithSecureCookieFunc that
// decides the preview cookie's Secure attribute from the connection, never
// from the Host header (a client picks its Host, and nginx's default
// "proxy_set_header Host $proxy_host" sends the upstream's, often
// 127.0.0.1). The cookie is Secure, except for a plain-HTTP request whose
// peer (r.RemoteAddr) is a loopback address and that carries no header
// only a proxy sets (Forwarded, X-Forwarded-For, -Proto, -Host, X-Real-IP):
// a browser on this machine, for local development. A reverse proxy on this
// machine that sends none of those headers (nginx's default proxy_pass) must
// be listed in trusted, or its clients get cookies without Secure.
//
// trusted lists the reverse proxies in front of the service. A request
// from a loopback peer in trusted comes through a proxy on this machine,
// for a client elsewhere: its cookie is Secure unless the proxy says the
// client spoke plain HTTP (last X-Forwarded-Proto value "http"; nginx:
// proxy_set_header X-Forwarded-Proto $scheme). X-Forwarded-Proto from any
// other peer is ignored. A header can only keep Secure off where the
// connection alone would leave it off: a request from a non-loopback peer,
// over TLS, or from an unknown peer (a Unix socket) always gets a Secure
// cookie, whatever a proxy says; serve previews over plain HTTP to other
// machines only with WithSecureCookie(false).
func SecureFromConnection(trusted ...netip.Prefix) func(*http.Request) bool {
	proxies := make([]netip.Prefix, 0, len(trusted))
	for _, p := range trusted {
		if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96) // peers are compared unmapped
		}
		proxies = append(proxies, p.Masked())
	}
	return func(r *http.Request) bool { return secureFromConnection(r, proxies) }
}

func secureFromConnection(r *http.Request, proxies []netip.Prefix) bool {
	if r.TLS != nil {
		return true
	}
	peer, ok := loopbackPeer(r)
	if !ok {
		return true
	}
	for _, p := range proxies {
		if p.Contains(peer) {
			return !strings.EqualFold(lastForwardedProto(r.Header), "http")
		}
	}
	return forwarded(r.Header)
}

// forwardingHeaders are set by reverse proxies, never by browsers.
var forwardingHeaders = []string{"Forwarded", "X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Real-Ip"}

// forwarded reports whether h carries a header only a proxy sets: a
// loopback peer that sends one is a proxy on this machine, not a local
// browser, and its client's cookie stays Secure.
func forwarded(h http.Header) bool {
	for _, k := range forwardingHeaders {
		if _, ok := h[k]; ok {
			return true
		}
	}
	return false
}

// loopbackPeer returns r's peer address when it is a loopback address.
func loopbackPeer(r *http.Request) (netip.Addr, bool) {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}, false
	}
	a := ap.Addr().Unmap()
	return a, a.IsLoopback()
}

// lastForwardedProto returns the last value of X-Forwarded-Proto: the one
// the nearest proxy set or appended.
func lastForwardedProto(h http.Header) string {
	vals := h.Values("X-Forwarded-Proto")
	if len(vals) == 0 {
		return ""
	}
	last := vals[len(vals)-1]
	if i := strings.LastIndexByte(last, ','); i >= 0 {
		last = last[i+1:]
	}
	return strings.TrimSpace(last)
}
