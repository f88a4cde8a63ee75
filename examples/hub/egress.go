package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/systembuilderhub/hardening"
	"github.com/systembuilderhub/hardening/previewsec/container"
	"github.com/systembuilderhub/hardening/previewsec/egress"
)

// egressState is the egress feature of one app: the policy preview
// sandboxes are held to and the container verifier.
type egressState struct {
	mu       sync.RWMutex
	policy   *egress.Policy
	verifier *container.Verifier
}

// egress returns the app's egress feature, nil when it is not set up.
func (a *app) egress() *egressState { return a.egressFeature }

// setupEgress builds the egress policy from PREVIEW_EGRESS_MODE,
// PREVIEW_EGRESS_ALLOWLIST and PREVIEW_EGRESS_DENYLIST and the container
// verifier from PREVIEW_CPU_LIMIT,
// PREVIEW_MEM_LIMIT, PREVIEW_NETWORK_MODE, PREVIEW_SECURITY_OPTS and
// DOCKER_HOST. The daemon is only contacted when a container is verified.
func (a *app) setupEgress(ctx context.Context) error {
	opts, err := egressPolicyOptionsFromEnv()
	if err != nil {
		return err
	}
	policy, err := egress.NewPolicy(append(opts, egress.WithLogger(a.log), egress.WithRegisterer(a.reg))...)
	if err != nil {
		return err
	}
	verifier, err := containerVerifierFromEnv(container.WithLogger(a.log))
	if err != nil {
		return err
	}
	st := &egressState{policy: policy, verifier: verifier}
	a.egressFeature = st
	a.onClose(func(ctx context.Context) error {
		st.mu.RLock()
		defer st.mu.RUnlock()
		return st.verifier.Close(ctx)
	})
	return nil
}

func (a *app) egressRoutes() []route {
	return []route{
		{Method: http.MethodPost, Pattern: "/api/v1/preview-security/egress/check", Access: user, Handler: http.HandlerFunc(a.handleEgressCheck)},
		{Method: http.MethodGet, Pattern: "/api/v1/preview-security/container/verify/{container_id}", Access: admin, Handler: http.HandlerFunc(a.handleContainerVerify)},
	}
}

// egressCheckRequest is the body of POST .../egress/check: either url, or
// host with an optional port (default 443).
type egressCheckRequest struct {
	URL  *string `json:"url"`
	Host *string `json:"host"`
	Port *int    `json:"port"`
}

type egressCheckResponse struct {
	Allowed bool     `json:"allowed"`
	Reason  string   `json:"reason"`
	Host    string   `json:"host"`
	Port    int      `json:"port"`
	Addrs   []string `json:"addrs"`
	Mode    string   `json:"mode"` // PREVIEW_EGRESS_MODE: allowlist or public
}

// egressCheckTimeout bounds the DNS resolution of one egress check; a
// resolver that does not answer in time is a dns_error decision.
const egressCheckTimeout = 5 * time.Second

// handleEgressCheck answers whether a preview sandbox may reach a
// destination, resolving DNS the way the dialer does.
func (a *app) handleEgressCheck(w http.ResponseWriter, r *http.Request) {
	var req egressCheckRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	st := a.egress()
	if st == nil {
		hardening.WriteProblem(w, r, hardening.NewProblem(http.StatusServiceUnavailable, "egress_unavailable", "the egress policy is not configured"))
		return
	}
	st.mu.RLock()
	policy := st.policy
	st.mu.RUnlock()
	ctx, cancel := context.WithTimeout(r.Context(), egressCheckTimeout)
	defer cancel()
	var d egress.Decision
	switch {
	case req.URL != nil && req.Host == nil && req.Port == nil:
		d = policy.DecideURL(ctx, *req.URL)
	case req.URL == nil && req.Host != nil:
		port := 443
		if req.Port != nil {
			port = *req.Port
		}
		d = policy.Decide(ctx, *req.Host, port)
	default:
		hardening.WriteProblem(w, r, hardening.NewProblem(http.StatusBadRequest, "invalid_body", `send {"url": "..."} or {"host": "...", "port": 443}`))
		return
	}
	resp := egressCheckResponse{Allowed: d.Allowed, Reason: d.Reason, Host: d.Host, Port: d.Port,
		Addrs: make([]string, 0, len(d.Addrs)), Mode: string(policy.Mode())}
	for _, addr := range d.Addrs {
		resp.Addrs = append(resp.Addrs, addr.String())
	}
	writeJSON(w, http.StatusOK, resp)
}

// handleContainerVerify checks a running preview container against the
// configured limits: 200 with the report (also when checks fail), 404 for
// an unknown container, 503 when Docker cannot be reached.
func (a *app) handleContainerVerify(w http.ResponseWriter, r *http.Request) {
	st := a.egress()
	if st == nil {
		hardening.WriteProblem(w, r, hardening.NewProblem(http.StatusServiceUnavailable, "docker_unavailable", "container verification is not configured"))
		return
	}
	st.mu.RLock()
	verifier := st.verifier
	st.mu.RUnlock()
	id := r.PathValue("container_id")
	report, err := verifier.Verify(r.Context(), id)
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, report)
	case errors.Is(err, container.ErrInvalidID):
		hardening.WriteProblem(w, r, hardening.NewProblem(http.StatusBadRequest, "invalid_container_id", "the container id may hold letters, digits, '_', '.' and '-' only"))
	case errors.Is(err, container.ErrNotFound):
		hardening.WriteProblem(w, r, hardening.NewProblem(http.StatusNotFound, "container_not_found", "the Docker daemon knows no such container"))
	default:
		a.log.ErrorContext(r.Context(), "container verification: docker unavailable", "container", id, "err", err)
		p := hardening.NewProblem(http.StatusServiceUnavailable, "docker_unavailable", "the Docker daemon could not be reached")
		p.RetryAfter = 5 * time.Second
		hardening.WriteProblem(w, r, p)
	}
}

// runEgressProxy is `hub egress-proxy [-addr host:port]`: the forward proxy
// preview sandboxes reach through HTTPS_PROXY/HTTP_PROXY, on its own port
// (EGRESS_PROXY_ADDR, default 127.0.0.1:8081), enforcing the egress policy
// from PREVIEW_EGRESS_MODE, PREVIEW_EGRESS_ALLOWLIST and
// PREVIEW_EGRESS_DENYLIST.
// proxyArgs are the flags of "hub egress-proxy".
type proxyArgs struct {
	addr       string
	maxTunnels int
	dnsCache   time.Duration
}

func (p *proxyArgs) flags() *flag.FlagSet {
	fs := newFlagSet("egress-proxy")
	fs.StringVar(&p.addr, "addr", envOr("EGRESS_PROXY_ADDR", "127.0.0.1:8081"), "listen address (EGRESS_PROXY_ADDR)")
	fs.IntVar(&p.maxTunnels, "max-tunnels", 256, "concurrent tunnels and requests")
	fs.DurationVar(&p.dnsCache, "dns-cache", 0, "keep DNS answers this long (0: resolve every request)")
	return fs
}

func runEgressProxy(ctx context.Context, args []string, _ io.Writer, log *slog.Logger) error {
	var pa proxyArgs
	if err := pa.flags().Parse(args); err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	opts, err := egressPolicyOptionsFromEnv()
	if err != nil {
		return err
	}
	policy, err := egress.NewPolicy(append(opts, egress.WithLogger(log), egress.WithResolveCache(pa.dnsCache))...)
	if err != nil {
		return err
	}
	proxy, err := egress.NewProxy(policy, egress.WithLogger(log), egress.WithMaxTunnels(pa.maxTunnels))
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", pa.addr)
	if err != nil {
		return fmt.Errorf("EGRESS_PROXY_ADDR=%s: %w", pa.addr, err)
	}
	log.Info("egress proxy listening", "addr", ln.Addr().String(), "mode", string(policy.Mode()))
	return proxy.Serve(ctx, ln)
}
