package egress

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPublicModeDecisions: public addresses on the allowed ports are
// allowed, whatever the name; anything special-purpose, denylisted or on
// another port is not.
func TestPublicModeDecisions(t *testing.T) {
	t.Parallel()
	res := newTestResolver().
		set("hooks.example.com", "93.184.215.14").
		set("v6.example.com", "2606:4700::1111").
		set("both.example.com", "93.184.215.15", "2606:4700::1112").
		set("internal.example.com", "10.0.0.7").
		set("half.example.com", "93.184.215.16", "fd00::1").
		set("metadata.example.com", "169.254.169.254").
		set("blocked.example.com", "93.184.215.17").
		set("in-denied-cidr.example.com", "198.18.0.1", "93.184.216.34")
	p, err := NewPolicy(WithMode(ModePublic), WithResolver(res), WithDeny("blocked.example.com", "93.184.216.0/24"))
	require.NoError(t, err)
	assert.Equal(t, ModePublic, p.Mode())
	ctx := context.Background()
	for _, tc := range []struct {
		host   string
		port   int
		reason string
	}{
		{"93.184.215.14", 443, ReasonAllowed},
		{"93.184.215.14", 80, ReasonAllowed},
		{"8.8.8.8", 443, ReasonAllowed},
		{"[2606:4700::1111]", 443, ReasonAllowed},
		{"2a00:1450:4001::200e", 80, ReasonAllowed},
		{"::ffff:8.8.8.8", 443, ReasonAllowed},
		{"64:ff9b::808:808", 443, ReasonAllowed},
		{"hooks.example.com", 443, ReasonAllowed},
		{"HOOKS.Example.COM.", 443, ReasonAllowed},
		{"v6.example.com", 443, ReasonAllowed},
		{"both.example.com", 80, ReasonAllowed},
		{"93.184.215.14", 22, ReasonPortNotAllowed},
		{"hooks.example.com", 8443, ReasonPortNotAllowed},
		{"127.0.0.1", 443, ReasonSpecialPurpose},
		{"127.0.0.1", 22, ReasonSpecialPurpose}, // the registries before the port
		{"10.0.0.1", 443, ReasonSpecialPurpose},
		{"169.254.169.254", 80, ReasonSpecialPurpose},
		{"::1", 443, ReasonSpecialPurpose},
		{"::ffff:127.0.0.1", 443, ReasonSpecialPurpose},
		{"internal.example.com", 443, ReasonSpecialPurpose},
		{"half.example.com", 443, ReasonSpecialPurpose},
		{"metadata.example.com", 80, ReasonSpecialPurpose},
		{"blocked.example.com", 443, ReasonDenylisted},
		{"93.184.216.34", 443, ReasonDenylisted},
		{"in-denied-cidr.example.com", 443, ReasonSpecialPurpose},
		{"nxdomain.example.com", 443, ReasonDNSError},
		{"0x7f.1", 443, ReasonMalformedHost},
		{"2130706433", 80, ReasonMalformedHost},
	} {
		d := p.Decide(ctx, tc.host, tc.port)
		assert.Equal(t, tc.reason, d.Reason, "%s:%d %+v", tc.host, tc.port, d)
		assert.Equal(t, tc.reason == ReasonAllowed, d.Allowed, "%s:%d", tc.host, tc.port)
	}
	d := p.Decide(ctx, "both.example.com", 443)
	assert.Len(t, d.Addrs, 2, "the dial may go to either checked address")

	// Ports are configurable; the default is 80 and 443.
	p8443, err := NewPolicy(WithMode(ModePublic), WithPorts(8443), WithResolver(res))
	require.NoError(t, err)
	assert.True(t, p8443.Decide(ctx, "hooks.example.com", 8443).Allowed)
	assert.Equal(t, ReasonPortNotAllowed, p8443.Decide(ctx, "hooks.example.com", 443).Reason)
}

// TestPublicModeConfig: public mode takes no allowlist and no allowed
// CIDRs (they would let internal destinations through); an unknown mode
// is an error.
func TestPublicModeConfig(t *testing.T) {
	t.Parallel()
	_, err := NewPolicy(WithMode(ModePublic), WithAllow("api.openai.com"))
	assert.Error(t, err)
	_, err = NewPolicy(WithMode(ModePublic), WithAllowCIDR(netip.MustParsePrefix("10.0.0.0/8")))
	assert.Error(t, err)
	_, err = NewPolicy(WithMode("open"))
	assert.Error(t, err)
	for in, want := range map[string]Mode{"allowlist": ModeAllowlist, "public": ModePublic, " Public ": ModePublic, "": ModeAllowlist} {
		m, err := ParseMode(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, m, in)
	}
	for _, in := range []string{"open", "all", "*", "deny"} {
		_, err := ParseMode(in)
		assert.Error(t, err, in)
	}
}

// TestAllowlistModeDoesNotResolveUnlistedNames: in allowlist mode a name
// off the allowlist is denied without a DNS query (a lookup would be a
// way out for data, and tell nothing the decision needs).
func TestAllowlistModeDoesNotResolveUnlistedNames(t *testing.T) {
	t.Parallel()
	res := newTestResolver().set("exfil.attacker.example", "127.0.0.1")
	p, err := NewPolicy(WithAllow("api.openai.com:443"), WithResolver(res))
	require.NoError(t, err)
	assert.Equal(t, ReasonNotInAllowlist, p.Decide(context.Background(), "exfil.attacker.example", 443).Reason)
	res.mu.Lock()
	defer res.mu.Unlock()
	assert.Zero(t, res.calls["exfil.attacker.example"])
}

// fakeInternet answers connects the test controls: each connect to a
// registered public address is served in memory by its handler, and every
// connect is recorded. Nothing leaves the process.
type fakeInternet struct {
	mu       sync.Mutex
	handlers map[string]http.Handler // by "ip:port"
	dialled  []string
}

// install makes p connect through the fake internet. The policy's own
// ControlContext check still runs on every connect.
func (f *fakeInternet) install(p *Policy) {
	p.connect = func(ctx context.Context, network, address string) (net.Conn, error) {
		if err := p.control(ctx, network, address, nil); err != nil {
			return nil, err
		}
		f.mu.Lock()
		f.dialled = append(f.dialled, address)
		h := f.handlers[address]
		f.mu.Unlock()
		if h == nil {
			return nil, &net.OpError{Op: "dial", Net: network, Err: errors.New("connection refused")}
		}
		client, server := net.Pipe()
		go serveOne(server, h)
		return client, nil
	}
}

func (f *fakeInternet) dials() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.dialled...)
}

// serveOne serves HTTP/1.1 requests on c until the client closes it.
func serveOne(c net.Conn, h http.Handler) {
	defer c.Close()
	br := bufio.NewReader(c)
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		rec := &pipeResponse{header: http.Header{}, status: http.StatusOK}
		h.ServeHTTP(rec, req)
		_, _ = io.Copy(io.Discard, req.Body)
		resp := &http.Response{StatusCode: rec.status, ProtoMajor: 1, ProtoMinor: 1, Header: rec.header,
			Body: io.NopCloser(strings.NewReader(rec.body.String())), ContentLength: int64(rec.body.Len())}
		if err := resp.Write(c); err != nil {
			return
		}
	}
}

type pipeResponse struct {
	header http.Header
	status int
	body   strings.Builder
}

func (r *pipeResponse) Header() http.Header         { return r.header }
func (r *pipeResponse) Write(b []byte) (int, error) { return r.body.Write(b) }
func (r *pipeResponse) WriteHeader(status int)      { r.status = status }

// TestNewClientPublicWebhook: a webhook client in public mode delivers to a
// public name, dialling exactly the checked address, and refuses redirects
// and rebinding towards internal addresses; nothing dials them.
func TestNewClientPublicWebhook(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var got []string
	hooks := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/to-metadata":
			http.Redirect(w, r, "http://169.254.169.254/latest/meta-data/", http.StatusFound)
		case "/to-internal-name":
			http.Redirect(w, r, "http://internal.example.com/", http.StatusTemporaryRedirect)
		case "/to-other-public":
			http.Redirect(w, r, "http://other.example.com/landed", http.StatusFound)
		default:
			body, _ := io.ReadAll(r.Body)
			mu.Lock()
			got = append(got, r.Host+r.URL.Path+" "+string(body))
			mu.Unlock()
			w.WriteHeader(http.StatusNoContent)
		}
	})
	inet := &fakeInternet{handlers: map[string]http.Handler{
		"93.184.215.14:80": hooks, "93.184.215.20:80": hooks,
	}}
	res := newTestResolver().
		set("hooks.example.com", "93.184.215.14").
		set("other.example.com", "93.184.215.20").
		set("internal.example.com", "10.0.0.7").
		set("rebind.example.com", "93.184.215.14").set("rebind.example.com", "127.0.0.1")
	p, err := NewPolicy(WithMode(ModePublic), WithResolver(res))
	require.NoError(t, err)
	inet.install(p)
	client := NewClient(p)
	t.Cleanup(client.CloseIdleConnections)

	post := func(url string) error {
		resp, err := client.Post(url, "application/json", strings.NewReader(`{"event":"preview.ready"}`))
		if err == nil {
			_ = resp.Body.Close()
		}
		return err
	}
	require.NoError(t, post("http://hooks.example.com/deliver"))
	require.NoError(t, post("http://hooks.example.com/to-other-public"))
	// Checked when the user registered it; the name rebinds before delivery.
	require.True(t, p.DecideURL(context.Background(), "http://rebind.example.com/deliver").Allowed)
	for _, url := range []string{
		"http://hooks.example.com/to-metadata",
		"http://hooks.example.com/to-internal-name",
		"http://rebind.example.com/deliver", // the client's own lookup answers 127.0.0.1
		"http://127.0.0.1/", "http://[::1]/", "http://10.0.0.7/", "http://0x7f.1/",
		"http://hooks.example.com:8080/deliver",
	} {
		err := post(url)
		require.Error(t, err, url)
		assert.ErrorIs(t, err, ErrDenied, url)
	}
	mu.Lock()
	assert.Equal(t, []string{`hooks.example.com/deliver {"event":"preview.ready"}`, "other.example.com/landed "}, got)
	mu.Unlock()
	for _, a := range inet.dials() {
		assert.Contains(t, []string{"93.184.215.14:80", "93.184.215.20:80"}, a, "dialled only checked public addresses")
	}
	assert.NotEmpty(t, inet.dials())
}

// TestNewClientIgnoresProxyEnvironment: the client has no proxy hop for
// the policy to misjudge; HTTP(S)_PROXY is ignored.
func TestNewClientIgnoresProxyEnvironment(t *testing.T) {
	t.Setenv("HTTP_PROXY", "http://93.184.215.99:3128")
	t.Setenv("HTTPS_PROXY", "http://93.184.215.99:3128")
	inet := &fakeInternet{handlers: map[string]http.Handler{
		"93.184.215.14:80": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}),
	}}
	p, err := NewPolicy(WithMode(ModePublic))
	require.NoError(t, err)
	inet.install(p)
	client := NewClient(p)
	t.Cleanup(client.CloseIdleConnections)
	resp, err := client.Get("http://93.184.215.14/")
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, []string{"93.184.215.14:80"}, inet.dials())
}
