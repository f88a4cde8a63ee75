package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
)

const testSecret = "orders-test-secret-0123456789"

// fixedResolver answers from a table and fails the test on any other
// name: the webhook check must never depend on the network.
type fixedResolver map[string][]netip.Addr

func (f fixedResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := f[host]; ok {
		return a, nil
	}
	return nil, &dnsError{host}
}

type dnsError struct{ host string }

func (e *dnsError) Error() string { return "no such host " + e.host }

var testResolver = fixedResolver{"localhost": {netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1")}}

// service is one running orders service over httptest.
type service struct {
	t   *testing.T
	app *app
	url string
}

// modes are the store configurations every end-to-end test runs on.
var modes = []string{"memory", "sqlite", "redis"}

// start runs the service in mode (memory, sqlite or redis) until the test ends.
func start(t *testing.T, mode string) *service {
	t.Helper()
	env := map[string]string{"ORDERS_AUTH_SECRET": testSecret}
	switch mode {
	case "sqlite":
		env["ORDERS_DATABASE_URL"] = "sqlite:///" + filepath.Join(t.TempDir(), "orders.db")
	case "redis":
		env["ORDERS_REDIS_URL"] = "redis://" + miniredis.RunT(t).Addr()
	}
	cfg, err := loadConfig(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	a, err := newApp(t.Context(), cfg, slog.New(slog.DiscardHandler), testResolver)
	if err != nil {
		t.Fatal(err)
	}
	h, err := a.handler()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		a.streams.Close(ctx)
		srv.Close()
		if err := a.Close(ctx); err != nil {
			t.Error(err)
		}
	})
	return &service{t: t, app: a, url: srv.URL}
}

// token signs a token for sub in org.
func (s *service) token(sub, org string, admin bool, ttl time.Duration) string {
	s.t.Helper()
	tok, err := sign([]byte(testSecret), sub, org, admin, ttl)
	if err != nil {
		s.t.Fatal(err)
	}
	return tok
}

// do sends one request; headers come as name, value pairs.
func (s *service) do(method, path, tok, body string, headers ...string) (*http.Response, string) {
	s.t.Helper()
	req, err := http.NewRequest(method, s.url+path, strings.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	return resp, string(b)
}

// expect fails the test unless resp has status and body contains every
// want. Every problem+json body must have the service's type: its problem
// type base and its reason.
func expect(t *testing.T, resp *http.Response, body string, status int, want ...string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("%s %s: status %d, want %d; body %s", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, status, body)
	}
	if resp.Header.Get("Content-Type") == "application/problem+json" {
		var p struct{ Type, Reason string }
		if err := json.Unmarshal([]byte(body), &p); err != nil || p.Reason == "" ||
			p.Type != "https://orders.example.com/problems/"+p.Reason {
			t.Fatalf("%s %s: problem %s (%v), want the type https://orders.example.com/problems/<reason>",
				resp.Request.Method, resp.Request.URL.Path, body, err)
		}
	}
	for _, w := range want {
		if !strings.Contains(body, w) {
			t.Fatalf("%s %s: body %s lacks %s", resp.Request.Method, resp.Request.URL.Path, body, w)
		}
	}
}
