package egress

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/systembuilderhub/hardening"
)

// ReasonHeader is the response header in which Proxy names the
// reason code of a refusal (a Reason* code, ReasonProxyLoop or
// ReasonTunnelLimit).
const ReasonHeader = "X-Egress-Reason"

// Reason codes only the proxy gives.
const (
	// ReasonProxyLoop: the destination is the proxy itself (one of its
	// listening addresses, or a request that already passed through it).
	ReasonProxyLoop = "proxy_loop"
	// ReasonTunnelLimit: the proxy already carries its maximum number of
	// concurrent tunnels and requests.
	ReasonTunnelLimit = "tunnel_limit"
)

// Proxy is an HTTP forward proxy that preview sandboxes reach through
// HTTPS_PROXY / HTTP_PROXY. It serves CONNECT (tunnels, for HTTPS) and
// absolute-form requests (plain HTTP, "GET http://host/path"). Every
// destination is checked by the Policy and dialled to the checked
// addresses only; a refusal is a 403 problem+json with the reason code in
// the X-Egress-Reason header. It limits concurrent tunnels and forwarded
// requests, bounds connect time and tunnel idle time, and refuses to connect
// to its own listening addresses or to forward a request that already went
// through it (Via header).
//
// The proxy does not authenticate its clients: run it on a network only the
// sandboxes reach. Only HTTP/1.1 CONNECT is supported.
type Proxy struct {
	policy         *Policy
	sem            chan struct{}
	connectTimeout time.Duration
	idleTimeout    time.Duration
	log            *slog.Logger
	via            string
	transport      *http.Transport
	rp             *httputil.ReverseProxy
	onError        hardening.ErrorHandler

	selfMu sync.RWMutex
	self   []netip.AddrPort
	local  []netip.Addr // local interface addresses, for unspecified self addresses

	connsMu sync.Mutex
	conns   map[net.Conn]struct{}
	closed  bool
	wg      sync.WaitGroup
}

// NewProxy returns a proxy enforcing policy.
func NewProxy(policy *Policy, opts ...ProxyOption) (*Proxy, error) {
	if policy == nil {
		return nil, errors.New("egress: proxy needs a policy")
	}
	c := proxyConfig{maxTunnels: 256, connectTimeout: 10 * time.Second, idleTimeout: 2 * time.Minute, onError: hardening.WriteError}
	for _, o := range opts {
		if o != nil {
			o.applyProxy(&c)
		}
	}
	if c.maxTunnels < 1 {
		return nil, errors.New("egress: proxy tunnel limit must be at least 1")
	}
	if c.connectTimeout <= 0 || c.idleTimeout <= 0 {
		return nil, errors.New("egress: proxy timeouts must be positive")
	}
	if c.onError == nil {
		return nil, errors.New("egress: nil proxy error handler")
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	var id [6]byte
	_, _ = rand.Read(id[:])
	p := &Proxy{
		policy:         policy,
		sem:            make(chan struct{}, c.maxTunnels),
		connectTimeout: c.connectTimeout,
		idleTimeout:    c.idleTimeout,
		log:            c.log,
		onError:        c.onError,
		via:            "hardening-egress-" + hex.EncodeToString(id[:]),
		conns:          map[net.Conn]struct{}{},
	}
	for _, a := range c.self {
		p.addSelf(a)
	}
	if c.reg != nil {
		active := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "hardening_previewsec_egress_proxy_active",
			Help: "Open CONNECT tunnels plus forwarded requests of the egress proxy.",
		}, func() float64 { return float64(len(p.sem)) })
		limit := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "hardening_previewsec_egress_proxy_max",
			Help: "The egress proxy's limit on concurrent tunnels plus forwarded requests.",
		}, func() float64 { return float64(cap(p.sem)) })
		for _, col := range []prometheus.Collector{active, limit} {
			if err := c.reg.Register(col); err != nil {
				return nil, fmt.Errorf("egress: register egress proxy metrics: %w", err)
			}
		}
	}
	p.transport = &http.Transport{
		Proxy:                 nil,
		DialContext:           p.dialForRequest,
		ForceAttemptHTTP2:     false,
		TLSHandshakeTimeout:   c.connectTimeout,
		ResponseHeaderTimeout: c.idleTimeout,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   16,
		DisableCompression:    true,
	}
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.Header.Add("Via", "1.1 "+p.via)
		},
		Transport:    p.transport,
		BufferPool:   proxyBufferPool{},
		ErrorLog:     slog.NewLogLogger(c.log.Handler(), slog.LevelWarn),
		ErrorHandler: p.forwardError,
	}
	return p, nil
}

// proxyBuffers recycles the 32 KiB copy buffers of forwarded bodies and
// tunnels.
var proxyBuffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// proxyBufferPool adapts proxyBuffers to httputil.BufferPool.
type proxyBufferPool struct{}

func (proxyBufferPool) Get() []byte { return *(proxyBuffers.Get().(*[]byte)) }

func (proxyBufferPool) Put(b []byte) {
	if cap(b) == 32<<10 {
		b = b[:cap(b)]
		proxyBuffers.Put(&b)
	}
}

type proxyDecisionKey struct{}

// dialForRequest dials for the forwarding transport: only to the addresses
// of the decision ServeHTTP stored in the request context.
func (p *Proxy) dialForRequest(ctx context.Context, network, _ string) (net.Conn, error) {
	d, ok := ctx.Value(proxyDecisionKey{}).(Decision)
	if !ok || !d.Allowed {
		return nil, &DeniedError{Decision: Decision{Reason: ReasonNotInAllowlist}}
	}
	ctx, cancel := context.WithTimeout(ctx, p.connectTimeout)
	defer cancel()
	return p.policy.dialDecided(ctx, network, d)
}

// ServeHTTP handles one proxy request.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodConnect {
		p.serveConnect(w, r)
		return
	}
	if !r.URL.IsAbs() || r.URL.Host == "" {
		p.onError(w, r, &ProxyError{Status: http.StatusBadRequest, Reason: "not_a_proxy_request", Detail: "send CONNECT or an absolute-form request"})
		return
	}
	for _, v := range r.Header.Values("Via") {
		if strings.Contains(v, p.via) {
			p.deny(w, r, &ProxyError{Status: http.StatusForbidden, Reason: ReasonProxyLoop, Detail: "the request already passed through this proxy"})
			return
		}
	}
	d := p.policy.decideTarget(r.Context(), r.URL)
	if !p.admit(w, r, d) {
		return
	}
	defer p.release()
	ctx := context.WithValue(r.Context(), proxyDecisionKey{}, d)
	p.rp.ServeHTTP(w, r.WithContext(ctx))
}

func (p *Proxy) forwardError(w http.ResponseWriter, r *http.Request, err error) {
	var denied *DeniedError
	switch {
	case errors.As(err, &denied):
		p.deny(w, r, &ProxyError{Status: http.StatusForbidden, Reason: denied.Decision.Reason, Detail: detailDenied, Decision: denied.Decision, err: denied})
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		p.onError(w, r, &ProxyError{Status: http.StatusGatewayTimeout, Reason: "upstream_timeout", Detail: "the destination did not answer in time", err: err})
	default:
		p.log.WarnContext(r.Context(), "egress proxy: forward failed", "host", r.URL.Host, "error", err)
		p.onError(w, r, &ProxyError{Status: http.StatusBadGateway, Reason: "upstream_unreachable", Detail: "the destination could not be reached", err: err})
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// detailDenied is the client-facing detail of a policy denial.
const detailDenied = "egress to this destination is not allowed"

// deny sets the reason header and answers with e.
func (p *Proxy) deny(w http.ResponseWriter, r *http.Request, e *ProxyError) {
	w.Header().Set(ReasonHeader, e.Reason)
	p.onError(w, r, e)
}

// admit answers the request itself and returns false unless d allows it,
// it does not loop back to the proxy, and a tunnel slot is free; on true the
// caller holds a slot and must release it.
func (p *Proxy) admit(w http.ResponseWriter, r *http.Request, d Decision) bool {
	switch {
	case !d.Allowed:
		p.deny(w, r, &ProxyError{Status: http.StatusForbidden, Reason: d.Reason, Detail: detailDenied, Decision: d, err: &DeniedError{Decision: d}})
	case p.isSelf(d):
		p.deny(w, r, &ProxyError{Status: http.StatusForbidden, Reason: ReasonProxyLoop, Detail: "the destination is this proxy", Decision: d})
	case !p.acquire():
		p.deny(w, r, &ProxyError{Status: http.StatusServiceUnavailable, Reason: ReasonTunnelLimit, Detail: "too many concurrent tunnels", Decision: d})
	default:
		return true
	}
	return false
}

func (p *Proxy) acquire() bool {
	select {
	case p.sem <- struct{}{}:
		return true
	default:
		return false
	}
}

func (p *Proxy) release() { <-p.sem }

// addSelf records an address the proxy listens on.
func (p *Proxy) addSelf(ap netip.AddrPort) {
	p.selfMu.Lock()
	defer p.selfMu.Unlock()
	ap = netip.AddrPortFrom(ap.Addr().Unmap().WithZone(""), ap.Port())
	p.self = append(p.self, ap)
	if ap.Addr().IsUnspecified() && p.local == nil {
		if ifaddrs, err := net.InterfaceAddrs(); err == nil {
			for _, ia := range ifaddrs {
				if pfx, err := netip.ParsePrefix(ia.String()); err == nil {
					p.local = append(p.local, pfx.Addr().Unmap())
				}
			}
		}
	}
}

// isSelf reports whether any address of d is one of the proxy's own.
func (p *Proxy) isSelf(d Decision) bool {
	p.selfMu.RLock()
	defer p.selfMu.RUnlock()
	for _, a := range d.Addrs {
		a = a.Unmap()
		for _, s := range p.self {
			if int(s.Port()) != d.Port {
				continue
			}
			sa := s.Addr()
			switch {
			case sa == a:
				return true
			case sa.IsLoopback() && a.IsLoopback():
				return true
			case sa.IsUnspecified() && (a.IsLoopback() || a.IsUnspecified() || containsAddr(p.local, a)):
				return true
			}
		}
	}
	return false
}

func containsAddr(list []netip.Addr, a netip.Addr) bool {
	for _, b := range list {
		if b == a {
			return true
		}
	}
	return false
}

// Serve serves the proxy on ln until ctx is cancelled, then shuts down
// (waiting up to 5s for forwarded requests) and closes every tunnel. ln's
// address is added to the proxy's own addresses first. It returns nil after
// a shutdown caused by ctx.
func (p *Proxy) Serve(ctx context.Context, ln net.Listener) error {
	if ap, err := netip.ParseAddrPort(ln.Addr().String()); err == nil {
		p.addSelf(ap)
	}
	srv := &http.Server{
		Handler:           p,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       p.idleTimeout,
		ErrorLog:          slog.NewLogLogger(p.log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		p.closeNow()
		return fmt.Errorf("egress: proxy: %w", err)
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		p.closeNow()
		_ = srv.Shutdown(sctx)
		<-errc
		return nil
	}
}

// Close refuses new tunnels at once, lets the open ones run until they end
// or ctx is done, then ends those left, waits for their goroutines and
// drops idle upstream connections. It returns ctx's error when tunnels had
// to be cut. Forwarded (non-CONNECT) requests are the http.Server's to
// drain (Serve does both). Calling Close again is safe.
func (p *Proxy) Close(ctx context.Context) error {
	p.connsMu.Lock()
	p.closed = true
	p.connsMu.Unlock()
	done := make(chan struct{})
	go func() { p.wg.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
		p.closeConns()
		<-done
	}
	p.transport.CloseIdleConnections()
	return err
}

// closeNow ends every tunnel at once: Close with no grace.
func (p *Proxy) closeNow() {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = p.Close(ctx)
}

// closeConns closes the connections of every open tunnel.
func (p *Proxy) closeConns() {
	p.connsMu.Lock()
	defer p.connsMu.Unlock()
	for c := range p.conns {
		_ = c.Close()
	}
}
