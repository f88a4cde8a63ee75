package egress_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/systembuilderhub/hardening"
	"github.com/systembuilderhub/hardening/previewsec/egress"
)

// exampleResolver answers from a fixed table, standing in for DNS.
type exampleResolver map[string][]netip.Addr

func (r exampleResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := r[host]; ok {
		return a, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

func ExampleNormalizeHost() {
	for _, h := range []string{"API.OpenAI.com.", "Bücher.example", "１２７.０.０.１", "[::FFFF:127.0.0.1]", "0x7f.1", "user@host"} {
		n, err := egress.NormalizeHost(h)
		if err != nil {
			fmt.Printf("%s: malformed\n", h)
			continue
		}
		fmt.Printf("%s: %s\n", h, n)
	}
	// Output:
	// API.OpenAI.com.: api.openai.com
	// Bücher.example: xn--bcher-kva.example
	// １２７.０.０.１: 127.0.0.1
	// [::FFFF:127.0.0.1]: ::ffff:127.0.0.1
	// 0x7f.1: malformed
	// user@host: malformed
}

func ExampleSpecialPurpose() {
	for _, s := range []string{"169.254.169.254", "64:ff9b::a9fe:a9fe", "8.8.8.8"} {
		name, special := egress.SpecialPurpose(netip.MustParseAddr(s))
		fmt.Println(s, special, name)
	}
	// Output:
	// 169.254.169.254 true 169.254.0.0/16 link-local, cloud metadata (RFC 3927)
	// 64:ff9b::a9fe:a9fe true 169.254.0.0/16 link-local, cloud metadata (RFC 3927) embedded in 64:ff9b::a9fe:a9fe
	// 8.8.8.8 false
}

func ExamplePolicy_Decide() {
	policy, err := egress.NewPolicy(
		egress.WithAllow("api.openai.com:443", "*.anthropic.com"),
		egress.WithDeny("evil.anthropic.com"),
		egress.WithResolver(exampleResolver{
			"api.openai.com":       {netip.MustParseAddr("104.18.33.45")},
			"api.anthropic.com":    {netip.MustParseAddr("160.79.104.10")},
			"rebind.anthropic.com": {netip.MustParseAddr("127.0.0.1")},
		}),
	)
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	for _, dest := range []string{"api.openai.com:443", "API.Anthropic.com.:443", "api.openai.com:80",
		"evil.anthropic.com:443", "rebind.anthropic.com:443", "169.254.169.254:80", "0x7f000001:80"} {
		d := policy.DecideHostPort(ctx, dest)
		fmt.Printf("%-26s allowed=%-5v %s\n", dest, d.Allowed, d.Reason)
	}
	// Output:
	// api.openai.com:443         allowed=true  allowed
	// API.Anthropic.com.:443     allowed=true  allowed
	// api.openai.com:80          allowed=false port_not_allowed
	// evil.anthropic.com:443     allowed=false denylisted
	// rebind.anthropic.com:443   allowed=false special_purpose_address
	// 169.254.169.254:80         allowed=false special_purpose_address
	// 0x7f000001:80              allowed=false malformed_host
}

// Hold every outbound connection made on a preview's behalf to the egress
// policy, at dial time: an http.Client on the policy's Transport, and the
// policy's DialContext for code that dials itself.
func Example_transport() {
	policy, err := egress.NewPolicy( // entries from configuration: egress.ParseAllowlist, ParseDenylist
		egress.WithAllow("api.openai.com:443", "*.anthropic.com"),
		egress.WithDeny("169.254.0.0/16")) // denies names resolving there
	if err != nil {
		log.Fatal(err)
	}
	client := &http.Client{Transport: egress.NewTransport(policy), Timeout: 30 * time.Second} // or egress.NewClient(policy): redirects checked too
	_, err = client.Get("http://169.254.169.254/latest/meta-data/")
	var denied *egress.DeniedError
	if errors.As(err, &denied) {
		fmt.Println("denied:", denied.Decision.Reason)
	}

	_, err = policy.DialContext(context.Background(), "tcp", "127.0.0.1:6379") // database drivers, gRPC, ...
	fmt.Println("denied:", errors.Is(err, egress.ErrDenied))
	// Output:
	// denied: denylisted
	// denied: true
}

// Send webhooks to the URLs your users register: any public destination,
// nothing internal, whatever the URL, its DNS answers or its redirects
// say. Every dial, redirect and (absent) proxy hop is checked.
func ExampleNewClient() {
	policy, err := egress.NewPolicy(egress.WithMode(egress.ModePublic)) // ports 80 and 443: egress.WithPorts
	if err != nil {
		log.Fatal(err)
	}
	client := egress.NewClient(policy)
	send := func(ctx context.Context, url string, event []byte) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(event))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return err // errors.Is(err, egress.ErrDenied) for a refused destination
		}
		defer resp.Body.Close()
		if resp.StatusCode >= 300 {
			return fmt.Errorf("webhook answered %s", resp.Status)
		}
		return nil
	}

	for _, url := range []string{"http://169.254.169.254/latest/meta-data/", "http://[::ffff:10.0.0.1]/hook",
		"http://0x7f.1/hook", "https://hooks.example.com:8443/hook"} {
		err := send(context.Background(), url, []byte(`{"event":"preview.ready"}`))
		var denied *egress.DeniedError
		if errors.As(err, &denied) {
			fmt.Println(url, "->", denied.Decision.Reason)
		}
	}
	fmt.Println(policy.DecideURL(context.Background(), "https://93.184.215.14/hook").Reason) // a public address
	// Output:
	// http://169.254.169.254/latest/meta-data/ -> special_purpose_address
	// http://[::ffff:10.0.0.1]/hook -> special_purpose_address
	// http://0x7f.1/hook -> malformed_host
	// https://hooks.example.com:8443/hook -> port_not_allowed
	// allowed
}

// Run the forward proxy sandboxes reach through HTTPS_PROXY/HTTP_PROXY.
func ExampleProxy() {
	allow, err := egress.ParseAllowlist("api.openai.com:443, *.anthropic.com") // from your configuration
	if err != nil {
		log.Fatal(err)
	}
	policy, err := egress.NewPolicy(egress.WithAllow(allow...))
	if err != nil {
		log.Fatal(err)
	}
	proxy, err := egress.NewProxy(policy, egress.WithMaxTunnels(128))
	if err != nil {
		log.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:8081")
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := proxy.Serve(ctx, ln); err != nil {
		log.Fatal(err)
	}
}

// Answer the proxy's refusals your own way: the handler receives a
// *egress.ProxyError, a hardening.Error whose Problem is the default
// answer; X-Egress-Reason is already set on a 403 or 503.
func ExampleWithErrorHandler() {
	policy, _ := egress.NewPolicy() // allowlist mode, empty allowlist: everything is denied
	proxy, err := egress.NewProxy(policy, egress.WithErrorHandler(func(w http.ResponseWriter, r *http.Request, err error) {
		var pe *egress.ProxyError
		if errors.As(err, &pe) && pe.Status == http.StatusForbidden {
			http.Error(w, "blocked by egress policy: "+pe.Reason, pe.Status)
			return
		}
		hardening.WriteError(w, r, err) // the default for the rest
	}))
	if err != nil {
		log.Fatal(err)
	}
	defer proxy.Close(context.Background())
	rec := httptest.NewRecorder()
	proxy.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "http://93.184.215.14/", nil))
	fmt.Println(rec.Code, rec.Header().Get(egress.ReasonHeader), strings.TrimSpace(rec.Body.String()))
	// Output:
	// 403 not_in_allowlist blocked by egress policy: not_in_allowlist
}
