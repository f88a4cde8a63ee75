package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"

	"golang.org/x/net/netutil"
)

// The hub's HTTP server limits. A client that is slow on purpose holds a
// connection, a file descriptor and some memory: each limit bounds how
// long, or how many.
const (
	// readHeaderTimeout bounds the time to read a request's headers.
	readHeaderTimeout = 10 * time.Second
	// idleTimeout closes a keep-alive connection idle this long.
	idleTimeout = 120 * time.Second
	// maxHeaderBytes caps a request's header block (Go's default is 1 MB);
	// a larger one is answered 431.
	maxHeaderBytes = 64 << 10

	// envMaxConns names the variable of config.MaxConns.
	envMaxConns = "HUB_MAX_CONNS"
	// defaultMaxConns is config.MaxConns when envMaxConns is unset.
	defaultMaxConns = 1024
	// envBodyTimeout names the variable of config.BodyTimeout.
	envBodyTimeout = "HUB_BODY_TIMEOUT"
	// defaultBodyTimeout is config.BodyTimeout when envBodyTimeout is unset.
	defaultBodyTimeout = 30 * time.Second
	// envWriteTimeout names the variable of config.WriteTimeout.
	envWriteTimeout = "HUB_WRITE_TIMEOUT"
	// defaultWriteTimeout is config.WriteTimeout when envWriteTimeout is
	// unset.
	defaultWriteTimeout = 60 * time.Second
)

// newServer returns the hub's http.Server for h. Its request contexts
// derive from ctx. The body and write deadlines are set per request by
// limitRequests (the streams are exempt from the write deadline), not
// with ReadTimeout and WriteTimeout, which would end every stream.
func newServer(ctx context.Context, h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
}

// listen opens cfg.Addr, accepting at most cfg.MaxConns connections at
// once: the next client waits in the kernel's listen backlog until a
// connection closes.
func listen(cfg config) (net.Listener, error) {
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("HUB_ADDR=%s: %w", cfg.Addr, err)
	}
	return netutil.LimitListener(ln, cfg.MaxConns), nil
}

// limitRequests sets each request's deadlines: the response must be
// written within write of the request's start (zero: no deadline; a
// stream route lifts it, see streaming), and a request with a body must
// deliver all of it within body. A body read then fails, the handler
// answers, and the server closes the connection. A handler that never
// reads the body is covered too: the server reads what is left of it
// under the same deadline before it answers. The read deadline does not
// outlast the body: net/http lifts it when the body has been read to its
// end, so a long handler's request context is not cancelled by it.
func limitRequests(body, write time.Duration, next http.Handler) http.Handler {
	if body <= 0 && write <= 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		now := time.Now()
		if write > 0 {
			_ = rc.SetWriteDeadline(now.Add(write))
		}
		if body > 0 && r.Body != nil && r.Body != http.NoBody {
			_ = rc.SetReadDeadline(now.Add(body))
		}
		next.ServeHTTP(w, r)
	})
}

// streaming lifts the write deadline limitRequests set, for a route that
// streams for as long as the client stays (SSE, WebSocket).
func streaming(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = http.NewResponseController(w).SetWriteDeadline(time.Time{})
		next.ServeHTTP(w, r)
	})
}
