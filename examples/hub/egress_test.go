package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening/previewsec/container"
	"github.com/systembuilderhub/hardening/previewsec/egress"
)

// egressHubResolver answers from a table instead of DNS.
type egressHubResolver map[string][]netip.Addr

func (r egressHubResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := r[host]; ok {
		return a, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

// egressFakeDocker serves container inspect answers on a unix socket:
// "good" is compliant, "priv" is privileged, "hang" never answers.
func egressFakeDocker(t *testing.T) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "d.sock")
	ln, err := net.Listen("unix", sock)
	require.NoError(t, err)
	inspect := func(privileged bool) string {
		return fmt.Sprintf(`{"Id":"%s","State":{"Running":true,"Pid":0},"HostConfig":{"NanoCpus":500000000,"Memory":268435456,"MemorySwap":268435456,"PidsLimit":128,"Privileged":%t,"SecurityOpt":["no-new-privileges"],"NetworkMode":"bridge","CapAdd":null}}`,
			strings.Repeat("c", 64), privileged)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{v}/containers/{id}/json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.PathValue("id") {
		case "good":
			_, _ = io.WriteString(w, inspect(false))
		case "priv":
			_, _ = io.WriteString(w, inspect(true))
		case "hang":
			<-r.Context().Done()
		default:
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, `{"message":"No such container"}`)
		}
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close(); <-done })
	return "unix://" + sock
}

func egressTestApp(t *testing.T, dockerHost string) (*app, string) {
	t.Helper()
	a, url := newTestApp(t)
	st := a.egress()
	require.NotNil(t, st)
	policy, err := egress.NewPolicy(
		egress.WithAllow("api.openai.com:443", "*.anthropic.com"),
		egress.WithResolver(egressHubResolver{
			"api.openai.com":       {netip.MustParseAddr("104.18.33.45")},
			"api.anthropic.com":    {netip.MustParseAddr("160.79.104.10")},
			"rebind.anthropic.com": {netip.MustParseAddr("169.254.169.254")},
		}),
		egress.WithRegisterer(a.reg))
	require.NoError(t, err)
	verifier, err := container.NewVerifier(container.DefaultLimits(),
		container.WithDockerHost(dockerHost), container.WithTimeout(300*time.Millisecond))
	require.NoError(t, err)
	st.mu.Lock()
	st.policy, st.verifier = policy, verifier
	st.mu.Unlock()
	return a, url
}

func TestEgressCheckEndpoint(t *testing.T) {
	a, base := egressTestApp(t, egressFakeDocker(t))
	tok := mintToken(t, a, "alice", "acme", false)
	url := base + "/api/v1/preview-security/egress/check"

	resp, body := call(t, http.MethodPost, url, tok, `{"url":"https://api.openai.com/v1/models"}`)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	var got map[string]any
	require.NoError(t, json.Unmarshal(body, &got))
	assert.Equal(t, map[string]any{"allowed": true, "reason": "allowed", "host": "api.openai.com", "port": 443.0,
		"addrs": []any{"104.18.33.45"}, "mode": "allowlist"}, got)

	for _, tc := range []struct {
		body, reason, host string
		port               float64
		allowed            bool
	}{
		{`{"host":"api.openai.com","port":443}`, "allowed", "api.openai.com", 443, true},
		{`{"host":"API.Anthropic.com."}`, "allowed", "api.anthropic.com", 443, true},
		{`{"host":"api.openai.com","port":80}`, "port_not_allowed", "api.openai.com", 80, false},
		{`{"host":"rebind.anthropic.com","port":443}`, "special_purpose_address", "rebind.anthropic.com", 443, false},
		{`{"url":"http://169.254.169.254/latest/meta-data/"}`, "special_purpose_address", "169.254.169.254", 80, false}, // before the allowlist
		{`{"host":"8.8.8.8"}`, "not_in_allowlist", "8.8.8.8", 443, false},
		{`{"url":"http://0x7f000001/"}`, "malformed_host", "", 80, false},
		{`{"url":"ftp://api.openai.com/"}`, "malformed_host", "", 0, false},
		{`{"host":"nope.anthropic.com","port":443}`, "dns_error", "nope.anthropic.com", 443, false},
	} {
		resp, body := call(t, http.MethodPost, url, tok, tc.body)
		require.Equal(t, http.StatusOK, resp.StatusCode, tc.body)
		var got map[string]any
		require.NoError(t, json.Unmarshal(body, &got))
		assert.Equal(t, tc.allowed, got["allowed"], tc.body)
		assert.Equal(t, tc.reason, got["reason"], tc.body)
		assert.Equal(t, tc.host, got["host"], tc.body)
		assert.Equal(t, tc.port, got["port"], tc.body)
		assert.NotNil(t, got["addrs"], tc.body)
	}

	for _, bad := range []string{`{`, `{}`, `{"url":"x","host":"y"}`, `{"url":5}`, `{"hots":"x"}`, `[]`} {
		resp, body := call(t, http.MethodPost, url, tok, bad)
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode, bad)
		assert.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"), bad)
		assert.Contains(t, string(body), `"status":400`)
	}
	resp, _ = call(t, http.MethodPost, url, "", `{"host":"api.openai.com"}`)
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)

	// Decisions are counted on the hub's registry.
	resp, body = call(t, http.MethodGet, base+"/metrics", "", "")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, string(body), `hardening_previewsec_egress_decisions_total{decision="deny",reason="special_purpose_address"} 2`)
}

func TestContainerVerifyEndpoint(t *testing.T) {
	a, base := egressTestApp(t, egressFakeDocker(t))
	admin := mintToken(t, a, "root", "acme", true)
	userTok := mintToken(t, a, "alice", "acme", false)
	url := base + "/api/v1/preview-security/container/verify/"

	resp, body := call(t, http.MethodGet, url+"good", admin, "")
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	var rep struct {
		ContainerID string `json:"container_id"`
		OK          bool   `json:"ok"`
		Checks      []struct {
			Name       string `json:"name"`
			Expected   string `json:"expected"`
			Actual     string `json:"actual"`
			OK         bool   `json:"ok"`
			Skipped    bool   `json:"skipped"`
			SkipReason string `json:"skip_reason"`
		} `json:"checks"`
	}
	require.NoError(t, json.Unmarshal(body, &rep))
	assert.True(t, rep.OK)
	assert.Equal(t, strings.Repeat("c", 64), rep.ContainerID)
	assert.NotEmpty(t, rep.Checks)

	resp, body = call(t, http.MethodGet, url+"priv", admin, "")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.NoError(t, json.Unmarshal(body, &rep))
	assert.False(t, rep.OK)

	resp, _ = call(t, http.MethodGet, url+"good", userTok, "")
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)

	resp, body = call(t, http.MethodGet, url+"unknown", admin, "")
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
	assert.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"))
	assert.Contains(t, string(body), "container_not_found")

	resp, body = call(t, http.MethodGet, url+"hang", admin, "")
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"))
	assert.Contains(t, string(body), "docker_unavailable")
}

func TestContainerVerifyDockerDown(t *testing.T) {
	a, base := egressTestApp(t, "unix://"+filepath.Join(t.TempDir(), "none.sock"))
	admin := mintToken(t, a, "root", "acme", true)
	resp, body := call(t, http.MethodGet, base+"/api/v1/preview-security/container/verify/abc", admin, "")
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"))
	assert.Contains(t, string(body), "docker_unavailable")
}

// TestEgressCheckEndpointPublicMode: with PREVIEW_EGRESS_MODE=public the
// check allows public addresses on ports 80 and 443 and says which mode
// decided (decisions only: nothing is dialled).
func TestEgressCheckEndpointPublicMode(t *testing.T) {
	t.Setenv("PREVIEW_EGRESS_MODE", "public")
	t.Setenv("PREVIEW_EGRESS_ALLOWLIST", "")
	t.Setenv("PREVIEW_EGRESS_DENYLIST", "blocked.example.com")
	a, base := newTestApp(t)
	tok := mintToken(t, a, "alice", "acme", false)
	url := base + "/api/v1/preview-security/egress/check"
	for _, tc := range []struct {
		body, reason string
		allowed      bool
	}{
		{`{"url":"https://93.184.215.14/hooks/1"}`, "allowed", true},
		{`{"host":"2606:4700::1111","port":80}`, "allowed", true},
		{`{"host":"93.184.215.14","port":22}`, "port_not_allowed", false},
		{`{"url":"http://169.254.169.254/latest/meta-data/"}`, "special_purpose_address", false},
		{`{"host":"::ffff:127.0.0.1"}`, "special_purpose_address", false},
		{`{"host":"blocked.example.com"}`, "denylisted", false},
		{`{"url":"http://0x7f.1/"}`, "malformed_host", false},
	} {
		resp, body := call(t, http.MethodPost, url, tok, tc.body)
		require.Equal(t, http.StatusOK, resp.StatusCode, tc.body)
		var got map[string]any
		require.NoError(t, json.Unmarshal(body, &got))
		assert.Equal(t, tc.allowed, got["allowed"], tc.body)
		assert.Equal(t, tc.reason, got["reason"], tc.body)
		assert.Equal(t, "public", got["mode"], tc.body)
	}
}

// startEgressProxy runs `hub egress-proxy` in-process on EGRESS_PROXY_ADDR
// until the test ends and returns its address.
func startEgressProxy(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	t.Setenv("EGRESS_PROXY_ADDR", addr)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runEgressProxy(ctx, nil, io.Discard, slog.New(slog.DiscardHandler)) }()
	t.Cleanup(func() {
		cancel()
		assert.NoError(t, <-done)
	})
	for i := 0; i < 100; i++ {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			_ = c.Close()
			return addr
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("egress proxy did not listen on %s", addr)
	return ""
}

// egressProxyRefusal sends CONNECT dest to the proxy and returns the
// status and reason header of its answer.
func egressProxyRefusal(t *testing.T, addr, dest string) (int, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer c.Close()
	_, err = fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", dest, dest)
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: http.MethodConnect})
	require.NoError(t, err)
	return resp.StatusCode, resp.Header.Get(egress.ReasonHeader)
}

// TestEgressProxySubcommand runs `hub egress-proxy` in-process: refusals
// are 403 with the reason header, under the mode of PREVIEW_EGRESS_MODE
// (no refused destination is dialled).
func TestEgressProxySubcommand(t *testing.T) {
	for _, tc := range []struct {
		mode, allow string
		refusals    map[string]string // destination -> reason
	}{
		{"", "api.openai.com:443", map[string]string{
			"169.254.169.254:80": "special_purpose_address",
			"8.8.8.8:22":         "not_in_allowlist",
			"api.openai.com:22":  "port_not_allowed",
		}},
		{"public", "", map[string]string{
			"169.254.169.254:80": "special_purpose_address",
			"8.8.8.8:22":         "port_not_allowed",
			"[::1]:443":          "special_purpose_address",
		}},
	} {
		t.Run("mode="+tc.mode, func(t *testing.T) {
			t.Setenv("PREVIEW_EGRESS_MODE", tc.mode)
			t.Setenv("PREVIEW_EGRESS_ALLOWLIST", tc.allow)
			t.Setenv("PREVIEW_EGRESS_DENYLIST", "")
			addr := startEgressProxy(t)
			for dest, reason := range tc.refusals {
				status, got := egressProxyRefusal(t, addr, dest)
				assert.Equal(t, http.StatusForbidden, status, dest)
				assert.Equal(t, reason, got, dest)
			}
		})
	}

	// Bad settings are startup errors naming the variable.
	for _, tc := range []struct{ mode, allow, name string }{
		{"", "0x7f.1", "PREVIEW_EGRESS_ALLOWLIST"},
		{"open", "", "PREVIEW_EGRESS_MODE"},
		{"public", "api.openai.com", "PREVIEW_EGRESS_ALLOWLIST"},
	} {
		t.Setenv("PREVIEW_EGRESS_MODE", tc.mode)
		t.Setenv("PREVIEW_EGRESS_ALLOWLIST", tc.allow)
		err := runEgressProxy(context.Background(), nil, io.Discard, slog.New(slog.DiscardHandler))
		require.Error(t, err, tc)
		assert.Contains(t, err.Error(), tc.name, tc)
	}
}
