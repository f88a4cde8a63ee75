package egress

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"time"
)

// NewTransport returns an http.Transport that dials through
// policy.DialContext, ignores the proxy environment variables (HTTP_PROXY,
// HTTPS_PROXY, NO_PROXY: a proxy would make the policy judge the proxy,
// not the destination) and has bounded connect, TLS handshake and idle
// timeouts. Each call returns a new Transport with its own connection
// pool. Redirects are the client's business: use NewClient, or check them
// yourself.
func NewTransport(policy *Policy) *http.Transport {
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           policy.DialContext,
		ForceAttemptHTTP2:     true,
		TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 60 * time.Second,
		ExpectContinueTimeout: time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   10,
	}
}

// maxRedirects is how many redirects NewClient's client follows.
const maxRedirects = 10

// DefaultClientTimeout is the Timeout of the client NewClient returns.
const DefaultClientTimeout = 30 * time.Second

// NewClient returns an *http.Client for outbound calls (webhooks, fetching
// user-supplied URLs, calls made on a sandbox's behalf) whose every hop is
// held to policy: each dial is decided and made only to the checked
// addresses (NewTransport), each redirect target is decided before it is
// followed (at most 10), and there is no proxy hop, since the proxy
// environment variables are ignored. A refusal is a *DeniedError, through
// *url.Error: errors.Is(err, ErrDenied).
//
// For webhooks, use a policy in public mode:
//
//	policy, _ := egress.NewPolicy(egress.WithMode(egress.ModePublic))
//	client := egress.NewClient(policy)
//
// The client's Timeout is DefaultClientTimeout; set it to 0 on the
// returned client for long streams. Each call returns a new client with
// its own connection pool.
func NewClient(policy *Policy) *http.Client {
	return &http.Client{
		Transport: NewTransport(policy),
		Timeout:   DefaultClientTimeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= maxRedirects {
				return fmt.Errorf("egress: stopped after %d redirects", maxRedirects)
			}
			if d := policy.decideTarget(req.Context(), req.URL); !d.Allowed {
				return &DeniedError{Decision: d}
			}
			return nil
		},
	}
}
