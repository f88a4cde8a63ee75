package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestFeatures: express_shipping is off by default, only an admin turns it
// on (for one org here), and the change is audited.
func TestFeatures(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			s := start(t, mode)
			alice := s.token("alice", "acme", false, time.Hour)
			root := s.token("root", "ops", true, time.Hour)
			resp, b := s.do("GET", "/features/express_shipping", alice, "")
			expect(t, resp, b, http.StatusOK, `{"enabled":false,"flag":"express_shipping"}`)
			resp, b = s.do("GET", "/features/teleport", alice, "")
			expect(t, resp, b, http.StatusNotFound, `"reason":"flag_not_found"`)

			on := `{"enabled":true,"org":"acme","reason":"pilot"}`
			resp, b = s.do("POST", "/admin/features/express_shipping", alice, on)
			expect(t, resp, b, http.StatusForbidden, `"reason":"forbidden"`)
			resp, b = s.do("GET", "/admin/features/audit", alice, "")
			expect(t, resp, b, http.StatusForbidden)
			resp, b = s.do("POST", "/admin/features/teleport", root, on)
			expect(t, resp, b, http.StatusNotFound)
			resp, b = s.do("POST", "/admin/features/express_shipping", root, `{"org":"acme"}`)
			expect(t, resp, b, http.StatusBadRequest)
			resp, b = s.do("POST", "/admin/features/express_shipping", root, on)
			expect(t, resp, b, http.StatusOK, `"new_value":true`)

			resp, b = s.do("GET", "/features/express_shipping", alice, "")
			expect(t, resp, b, http.StatusOK, `"enabled":true`)
			resp, b = s.do("GET", "/features/express_shipping", s.token("carol", "globex", false, time.Hour), "")
			expect(t, resp, b, http.StatusOK, `"enabled":false`)

			resp, b = s.do("GET", "/admin/features/audit", root, "")
			expect(t, resp, b, http.StatusOK)
			var page struct {
				Entries []map[string]any `json:"entries"`
			}
			if err := json.Unmarshal([]byte(b), &page); err != nil || len(page.Entries) != 1 {
				t.Fatalf("audit %s: %v", b, err)
			}
			e := page.Entries[0]
			if e["flag_name"] != "express_shipping" || e["tenant_id"] != "acme" || e["changed_by"] != "root" ||
				e["new_value"] != true || e["reason"] != "pilot" {
				t.Fatalf("audit entry %v", e)
			}
		})
	}
}

// TestWebhookCheck: the public-mode decision for a public address, the
// metadata address and localhost, without a dial: the only resolver is a
// table, and the "public" address is a listener that must see no
// connection.
func TestWebhookCheck(t *testing.T) {
	s := start(t, "memory")
	tok := s.token("alice", "acme", false, time.Hour)
	for url, want := range map[string]string{
		"https://93.184.215.14/hook":               `{"allowed":true,"reason":"allowed"}`,
		"http://169.254.169.254/latest/meta-data/": `{"allowed":false,"reason":"special_purpose_address"}`,
		"http://localhost":                         `{"allowed":false,"reason":"special_purpose_address"}`,
		"http://localhost:6379":                    `{"allowed":false,"reason":"port_not_allowed"}`,
		"ftp://93.184.215.14/":                     `{"allowed":false,"reason":"malformed_host"}`,
	} {
		body, _ := json.Marshal(map[string]string{"url": url})
		resp, b := s.do("POST", "/webhooks/check", tok, string(body))
		expect(t, resp, b, http.StatusOK)
		if strings.TrimSpace(b) != want {
			t.Errorf("%s: %s, want %s", url, b, want)
		}
	}
	resp, b := s.do("POST", "/webhooks/check", "", `{"url":"http://localhost"}`)
	expect(t, resp, b, http.StatusUnauthorized)
}

// TestWebhookCheckNeverDials: a URL naming a live loopback listener is
// decided (denied) and the listener sees no connection.
func TestWebhookCheckNeverDials(t *testing.T) {
	hits := make(chan struct{}, 1)
	target := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits <- struct{}{} }))
	defer target.Close()
	s := start(t, "memory")
	resp, b := s.do("POST", "/webhooks/check", s.token("alice", "acme", false, time.Hour), `{"url":"`+target.URL+`"}`)
	expect(t, resp, b, http.StatusOK, `"allowed":false`)
	select {
	case <-hits:
		t.Fatal("the check connected to the URL")
	case <-time.After(100 * time.Millisecond):
	}
}

// TestTokenCommand: the token subcommand prints a token the service
// accepts, with the claims asked for; another secret's token is refused.
func TestTokenCommand(t *testing.T) {
	s := start(t, "memory")
	getenv := func(k string) string { return map[string]string{"ORDERS_AUTH_SECRET": testSecret}[k] }
	var out bytes.Buffer
	if err := runToken([]string{"-sub", "alice", "-org", "acme", "-admin", "-ttl", "30m"}, getenv, &out); err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(out.String()))
	c, err := s.app.auth.Authenticate(req)
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject != "alice" || c.Tenant != "acme" || !c.HasRole("admin") || time.Until(c.ExpiresAt) > 30*time.Minute ||
		time.Until(c.ExpiresAt) < 29*time.Minute {
		t.Fatalf("caller %+v", c)
	}
	other, _ := sign([]byte("another-secret-0123456789"), "alice", "acme", false, time.Hour)
	resp, b := s.do("GET", "/features/express_shipping", other, "")
	expect(t, resp, b, http.StatusUnauthorized)
	for _, env := range []string{"short", ""} {
		err := runToken([]string{"-sub", "alice", "-org", "acme"}, func(string) string { return env }, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "ORDERS_AUTH_SECRET") {
			t.Fatalf("secret %q: %v", env, err)
		}
	}
	if err := runToken([]string{"-sub", "alice"}, getenv, io.Discard); err == nil {
		t.Fatal("no -org: no error")
	}
}

// TestBearerOnly: a valid token in the access_token cookie or query
// parameter is not a credential, on the REST routes nor on the stream.
func TestBearerOnly(t *testing.T) {
	s := start(t, "memory")
	tok := s.token("alice", "acme", false, time.Hour)
	for _, path := range []string{"/features/express_shipping", "/events"} {
		resp, b := s.do("GET", path+"?access_token="+tok, "", "")
		expect(t, resp, b, http.StatusUnauthorized)
		resp, b = s.do("GET", path, "", "", "Cookie", "access_token="+tok)
		expect(t, resp, b, http.StatusUnauthorized)
	}
}

// TestConfigErrors: every error names its variable; without
// ORDERS_AUTH_SECRET the service starts only on a loopback address.
func TestConfigErrors(t *testing.T) {
	for env, name := range map[string]string{
		"ORDERS_AUTH_SECRET=short":                                      "ORDERS_AUTH_SECRET",
		"ORDERS_AUTH_SECRET=short ORDERS_ADDR=0.0.0.0:8090":             "ORDERS_AUTH_SECRET",
		"ORDERS_AUTH_SECRET= ORDERS_ADDR=0.0.0.0:8090":                  "ORDERS_AUTH_SECRET",
		"ORDERS_AUTH_SECRET= ORDERS_ADDR=:8090":                         "ORDERS_AUTH_SECRET",
		"ORDERS_AUTH_SECRET= ORDERS_ADDR=localhost:8090":                "ORDERS_AUTH_SECRET",
		"ORDERS_AUTH_SECRET= ORDERS_ADDR=[2001:db8::1]:8090":            "ORDERS_AUTH_SECRET",
		"ORDERS_DATABASE_URL=postgres://x/y":                            "ORDERS_DATABASE_URL",
		"ORDERS_DATABASE_URL=sqlite:///":                                "ORDERS_DATABASE_URL",
		"ORDERS_DATABASE_URL=sqlite:///a.db ORDERS_REDIS_URL=redis://h": "ORDERS_REDIS_URL",
		"ORDERS_REDIS_URL=http://h":                                     "ORDERS_REDIS_URL",
	} {
		_, err := loadConfig(envOf(env))
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: %v, want an error naming %s", env, err, name)
		}
	}
	cfg, err := loadConfig(envOf(""))
	if err != nil || cfg.Addr != "127.0.0.1:8090" || cfg.SQLitePath != "" || cfg.Redis != nil || cfg.DevSecret ||
		string(cfg.Secret) != testSecret {
		t.Fatalf("defaults: %+v %v", cfg, err)
	}
	for _, addr := range []string{"", "127.0.0.1:0", "[::1]:8090"} {
		cfg, err := loadConfig(envOf("ORDERS_AUTH_SECRET= ORDERS_ADDR=" + addr))
		other, _ := loadConfig(envOf("ORDERS_AUTH_SECRET= ORDERS_ADDR=" + addr))
		if err != nil || !cfg.DevSecret || len(cfg.Secret) < 16 || string(cfg.Secret) == string(other.Secret) {
			t.Fatalf("ORDERS_ADDR=%s without a secret: %+v %v, want a random development secret", addr, cfg, err)
		}
	}
}

// envOf is a getenv of testSecret and then the NAME=value pairs of env.
func envOf(env string) func(string) string {
	vars := map[string]string{"ORDERS_AUTH_SECRET": testSecret}
	for kv := range strings.FieldsSeq(env) {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	return func(k string) string { return vars[k] }
}
