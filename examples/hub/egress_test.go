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
	assert.Equal(t, map[string]any{"allowed": true, "reason": "allowed", "host": "api.openai.com", "port": 443.0, "addrs": []any{"104.18.33.45"}}, got)

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

// TestEgressProxySubcommand runs `hub egress-proxy` in-process on
// EGRESS_PROXY_ADDR: a destination off the allowlist gets 403 with the
// reason header.
func TestEgressProxySubcommand(t *testing.T) {
	t.Setenv("PREVIEW_EGRESS_ALLOWLIST", "api.openai.com:443")
	t.Setenv("PREVIEW_EGRESS_DENYLIST", "")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	t.Setenv("EGRESS_PROXY_ADDR", addr)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- subcommands["egress-proxy"](ctx, nil, io.Discard, slog.New(slog.DiscardHandler)) }()
	defer func() {
		cancel()
		assert.NoError(t, <-done)
	}()
	var c net.Conn
	for i := 0; i < 100; i++ {
		if c, err = net.Dial("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	require.NoError(t, err)
	defer c.Close()
	_, err = fmt.Fprint(c, "CONNECT 169.254.169.254:80 HTTP/1.1\r\nHost: 169.254.169.254:80\r\n\r\n")
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: http.MethodConnect})
	require.NoError(t, err)
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)
	assert.Equal(t, "special_purpose_address", resp.Header.Get(egress.ReasonHeader))

	// A bad allowlist is a startup error naming the variable.
	t.Setenv("PREVIEW_EGRESS_ALLOWLIST", "0x7f.1")
	err = runEgressProxy(context.Background(), nil, io.Discard, slog.New(slog.DiscardHandler))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "PREVIEW_EGRESS_ALLOWLIST")
}
