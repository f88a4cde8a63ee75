package previewsec_test

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening/previewsec"
)

// TestSecureFromConnection: the cookie's Secure attribute follows the
// connection (TLS, the peer's address) and a trusted proxy's
// X-Forwarded-Proto, never the Host header.
func TestSecureFromConnection(t *testing.T) {
	local := []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("::1/128")}
	lan := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	cases := []struct {
		name    string
		remote  string
		host    string
		tls     bool
		proto   []string // X-Forwarded-Proto lines
		trusted []netip.Prefix
		secure  bool
	}{
		{"Host 127.0.0.1 on a public listener", "203.0.113.7:50000", "127.0.0.1", false, nil, nil, true},
		{"Host localhost from afar", "203.0.113.7:50000", "localhost:8080", false, nil, nil, true},
		{"nginx proxy_set_header Host $proxy_host", "10.1.2.3:41000", "127.0.0.1:8080", false, nil, nil, true},
		{"public Host, public peer", "203.0.113.7:50000", "hub.example.com", false, nil, nil, true},
		{"plain HTTP from this machine", "127.0.0.1:50000", "127.0.0.1:8080", false, nil, nil, false},
		{"plain HTTP from this machine, public Host", "127.0.0.1:50000", "hub.example.com", false, nil, nil, false},
		{"IPv6 loopback", "[::1]:50000", "[::1]:8080", false, nil, nil, false},
		{"IPv4-mapped loopback", "[::ffff:127.0.0.1]:50000", "localhost", false, nil, nil, false},
		{"other loopback address", "127.0.0.2:50000", "localhost", false, nil, nil, false},
		{"TLS from this machine", "127.0.0.1:50000", "localhost", true, nil, nil, true},
		{"unknown peer (unix socket)", "@", "localhost", false, nil, nil, true},
		{"empty peer", "", "localhost", false, nil, nil, true},
		{"untrusted local peer sending X-Forwarded-Proto is a proxy", "127.0.0.1:50000", "localhost", false, []string{"https"}, nil, true},
		{"untrusted local peer claiming http is still a proxy", "127.0.0.1:50000", "localhost", false, []string{"http"}, nil, true},
		{"http claimed by a public peer", "203.0.113.7:50000", "localhost", false, []string{"http"}, nil, true},
		{"trusted local proxy, no header", "127.0.0.1:50000", "127.0.0.1:8080", false, nil, local, true},
		{"trusted local proxy says https", "127.0.0.1:50000", "127.0.0.1:8080", false, []string{"https"}, local, true},
		{"trusted local proxy says http", "127.0.0.1:50000", "127.0.0.1:8080", false, []string{"http"}, local, false},
		{"trusted local proxy says HTTP", "[::1]:50000", "localhost", false, []string{"HTTP"}, local, false},
		{"trusted local proxy appends http last", "127.0.0.1:50000", "localhost", false, []string{"https, http"}, local, false},
		{"trusted local proxy appends https last", "127.0.0.1:50000", "localhost", false, []string{"http", "https"}, local, true},
		{"trusted remote proxy says http", "10.1.2.3:41000", "localhost", false, []string{"http"}, lan, true},
		{"trusted as an IPv4-mapped prefix", "127.0.0.1:50000", "localhost", false, nil, []netip.Prefix{netip.MustParsePrefix("::ffff:127.0.0.0/104")}, true},
		{"local peer outside the trusted set", "127.0.0.1:50000", "localhost", false, nil, lan, false},
		{"local peer outside the trusted set, forwarding", "127.0.0.1:50000", "localhost", false, []string{"https"}, lan, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/preview/p/", nil)
			r.RemoteAddr, r.Host = tc.remote, tc.host
			if tc.tls {
				r.TLS = &tls.ConnectionState{}
			}
			for _, v := range tc.proto {
				r.Header.Add("X-Forwarded-Proto", v)
			}
			assert.Equal(t, tc.secure, previewsec.SecureFromConnection(tc.trusted...)(r))
		})
	}
}

// TestSecureFromConnectionSameHostProxy: a reverse proxy on this machine
// that nobody listed as trusted (nginx with proxy_set_header
// X-Forwarded-For, or X-Real-IP, or Forwarded) still gets Secure cookies
// for its clients: a browser never sends those headers.
func TestSecureFromConnectionSameHostProxy(t *testing.T) {
	for _, h := range []string{"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Real-IP", "X-Forwarded-Proto"} {
		r := httptest.NewRequest(http.MethodGet, "/preview/p/", nil)
		r.RemoteAddr, r.Host = "127.0.0.1:50000", "127.0.0.1:8080"
		r.Header.Set(h, "203.0.113.7")
		assert.True(t, previewsec.SecureFromConnection()(r), h)
	}
}

// TestMiddlewareSecureCookieIgnoresHost: Host: 127.0.0.1 sent to a public
// listener does not drop Secure from the exchanged cookie.
func TestMiddlewareSecureCookieIgnoresHost(t *testing.T) {
	f := newFixture(t)
	auth, err := previewsec.RequirePreviewToken(f.ver, previewsec.WithSecureCookieFunc(previewsec.SecureFromConnection()))
	require.NoError(t, err)
	h := auth.Handler(http.NotFoundHandler())
	for remote, secure := range map[string]bool{"203.0.113.7:50000": true, "127.0.0.1:50000": false} {
		r := httptest.NewRequest(http.MethodGet, "/preview/prev-a/?preview_token="+f.mint(t, testGrant), nil)
		r.Host, r.RemoteAddr = "127.0.0.1", remote
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		require.Equal(t, http.StatusSeeOther, rec.Code)
		cookies := rec.Result().Cookies()
		require.Len(t, cookies, 1)
		assert.Equal(t, secure, cookies[0].Secure, "peer %s", remote)
	}
}
