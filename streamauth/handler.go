package streamauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/systembuilderhub/hardening"
)

// Event is one message for a stream.
type Event struct {
	// ID is the SSE "id:" (the client's next Last-Event-ID) and the
	// WebSocket message's "id". Optional; must not contain newlines.
	ID string
	// Type is the SSE "event:" name and the WebSocket message's "event".
	// Optional; must not contain newlines.
	Type string
	// Tenant is the tenant the event belongs to. A stream of another
	// tenant never sends it: the stream is dropped instead
	// (tenant_mismatch). Empty means the stream's own tenant.
	Tenant string
	// Data is the payload. WebSocket messages embed it as JSON when it is
	// valid JSON and as a string otherwise.
	Data []byte
}

// NewEvent returns an event of type typ whose data is v marshalled as JSON.
func NewEvent(typ string, v any) (Event, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return Event{}, fmt.Errorf("streamauth: marshal event: %w", err)
	}
	return Event{Type: typ, Data: b}, nil
}

// HandlerOption configures [SSE] and [WebSocket].
type HandlerOption interface{ applyHandler(*handlerConfig) }

type handlerOption func(*handlerConfig)

func (f handlerOption) applyHandler(c *handlerConfig) { f(c) }

type handlerConfig struct {
	resourceTenant func(*http.Request) string
	acceptOptions  *websocket.AcceptOptions
	readLimit      int64
	writeTimeout   time.Duration
	onError        hardening.ErrorHandler
}

// WithErrorHandler sets how a request that opens no stream is answered:
// h receives a *[RefusedError] (401 missing/invalid/expired/revoked token,
// 403 tenant_mismatch, 426 websocket_upgrade_required, 429
// stream_limit_exceeded, 503 auth_unavailable or shutting_down), after the
// handler set WWW-Authenticate (401) or Upgrade (426). nil, the default, is
// hardening.WriteError (problem+json); pass
// hardening.ProblemWriter{TypeBase: ...}.WriteError to link your own
// documentation.
func WithErrorHandler(h hardening.ErrorHandler) HandlerOption {
	return handlerOption(func(c *handlerConfig) { c.onError = h })
}

// DefaultWriteTimeout bounds every write to a stream when WithWriteTimeout
// is not given.
const DefaultWriteTimeout = 10 * time.Second

// WithWriteTimeout bounds every write to a stream (an SSE event and its
// flush, a WebSocket message, ping or close frame; default
// DefaultWriteTimeout). A write that does not finish in time (the client
// stopped reading) ends the stream with reason write_timeout. It is also
// the bound on closing a dropped stream: a stream dropped at expiry, on
// revocation or on shutdown whose client does not read has its connection
// closed within d. d must be positive.
func WithWriteTimeout(d time.Duration) HandlerOption {
	return handlerOption(func(c *handlerConfig) { c.writeTimeout = d })
}

// WithResourceTenant declares the tenant of the resource a stream is opened
// for (for example from the path). When it returns a tenant other than the
// principal's, the stream is refused with 403 tenant_mismatch; "" means the
// resource is not tenant-scoped.
func WithResourceTenant(fn func(r *http.Request) string) HandlerOption {
	return handlerOption(func(c *handlerConfig) { c.resourceTenant = fn })
}

// WithAcceptOptions sets the WebSocket upgrade options (origin patterns,
// subprotocols, compression). The default checks the Origin header against
// the request's host, as coder/websocket does.
func WithAcceptOptions(o *websocket.AcceptOptions) HandlerOption {
	return handlerOption(func(c *handlerConfig) { c.acceptOptions = o })
}

// WithReadLimit sets the largest WebSocket message read (default 32 KiB);
// n must be positive.
func WithReadLimit(n int64) HandlerOption {
	return handlerOption(func(c *handlerConfig) { c.readLimit = n })
}

// tokenParamer is implemented by authenticators that read a query token
// under a name of their own.
type tokenParamer interface{ tokenParam() string }

func (a *JWTAuthenticator) tokenParam() string { return a.cfg.queryParam }

type admission struct {
	auth  hardening.Authenticator
	reg   *Registry
	cfg   handlerConfig
	param string
}

func newAdmission(auth hardening.Authenticator, reg *Registry, opts []HandlerOption) (admission, error) {
	if auth == nil {
		return admission{}, errors.New("streamauth: nil hardening.Authenticator")
	}
	if reg == nil {
		return admission{}, errors.New("streamauth: nil Registry")
	}
	a := admission{auth: auth, reg: reg, param: DefaultTokenParam,
		cfg: handlerConfig{readLimit: 32 << 10, writeTimeout: DefaultWriteTimeout}}
	if tp, ok := auth.(tokenParamer); ok && tp.tokenParam() != "" {
		a.param = tp.tokenParam()
	}
	for _, o := range opts {
		if o != nil {
			o.applyHandler(&a.cfg)
		}
	}
	if a.cfg.writeTimeout <= 0 {
		return admission{}, errors.New("streamauth: write timeout must be positive")
	}
	if a.cfg.readLimit <= 0 {
		return admission{}, errors.New("streamauth: read limit must be positive")
	}
	if a.cfg.onError == nil {
		a.cfg.onError = hardening.WriteError
	}
	return a, nil
}

// admit authenticates r and opens its stream, answering the request itself
// (401/403/429/503, through the ErrorHandler) when it cannot. The returned
// request has the stream's context and no query token.
func (a *admission) admit(w http.ResponseWriter, r *http.Request, kind Kind) (*stream, context.Context, *http.Request, bool) {
	log := a.reg.cfg.log
	rr := redactRequest(r, a.param)
	attrs := func(extra ...slog.Attr) []slog.Attr {
		return append([]slog.Attr{slog.String("kind", string(kind)), slog.String("method", r.Method),
			slog.String("url", rr.URL.String()), slog.String("remote", r.RemoteAddr)}, extra...)
	}
	p, err := a.auth.Authenticate(r)
	if err != nil {
		ref := authRefusal(err)
		a.reg.refused(ref.Reason, "")
		log.LogAttrs(r.Context(), slog.LevelWarn, "streamauth: stream rejected",
			attrs(slog.String("event", "auth_rejected"), slog.String("reason", ref.Reason))...)
		a.refuse(w, r, ref)
		return nil, nil, nil, false
	}
	// who are attrs plus the caller's.
	who := func(extra ...slog.Attr) []slog.Attr {
		return attrs(append(extra, slog.String("user_id", p.Subject), slog.String("tenant_id", p.Tenant))...)
	}
	if a.cfg.resourceTenant != nil {
		if rt := a.cfg.resourceTenant(r); rt != "" && rt != p.Tenant {
			a.reg.refused(string(ReasonTenantMismatch), ReasonTenantMismatch)
			log.LogAttrs(r.Context(), slog.LevelWarn, "streamauth: stream rejected",
				who(slog.String("event", "tenant_mismatch"), slog.String("reason", string(ReasonTenantMismatch)),
					slog.String("resource_tenant_id", rt))...)
			a.refuse(w, r, &RefusedError{Status: http.StatusForbidden, Reason: string(ReasonTenantMismatch)})
			return nil, nil, nil, false
		}
	}
	s, ctx, err := a.reg.open(r.Context(), kind, p)
	if err != nil {
		ref := openRefusal(err)
		if ref.Reason != reasonShuttingDown {
			a.reg.refused(ref.Reason, "")
		}
		var le *LimitError
		switch {
		case errors.As(err, &le):
			log.LogAttrs(r.Context(), slog.LevelWarn, "streamauth: stream rejected",
				who(slog.String("event", "limit_exceeded"), slog.String("reason", ref.Reason), slog.String("scope", le.Scope))...)
		case ref.Status == http.StatusUnauthorized:
			log.LogAttrs(r.Context(), slog.LevelWarn, "streamauth: stream rejected",
				who(slog.String("event", "auth_rejected"), slog.String("reason", ref.Reason))...)
		}
		a.refuse(w, r, ref)
		return nil, nil, nil, false
	}
	log.LogAttrs(r.Context(), slog.LevelInfo, "streamauth: stream accepted",
		who(slog.String("event", "accepted"), slog.String("stream_id", s.info.ID), slog.Time("expires_at", p.ExpiresAt))...)
	return s, ctx, rr.WithContext(ctx), true
}

// openRefusal returns the refusal of an error of Registry.open.
func openRefusal(err error) *RefusedError {
	var le *LimitError
	switch {
	case errors.As(err, &le):
		return &RefusedError{Status: http.StatusTooManyRequests, Reason: reasonStreamLimitExceeded, Err: err}
	case errors.Is(err, ErrTokenExpired), errors.Is(err, ErrRevoked), errors.Is(err, ErrUnavailable):
		// ErrUnavailable: the revocations could not be loaded.
		return authRefusal(err)
	default:
		return &RefusedError{Status: http.StatusServiceUnavailable, Reason: reasonShuttingDown, Err: err}
	}
}

// refuse sets the headers of ref's answer and hands ref to the
// ErrorHandler.
func (a *admission) refuse(w http.ResponseWriter, r *http.Request, ref *RefusedError) {
	if ref.Status == http.StatusUnauthorized {
		chal := `Bearer`
		if ref.Reason != reasonMissingToken {
			chal = `Bearer error="invalid_token"`
		}
		w.Header().Set("WWW-Authenticate", chal)
	}
	a.cfg.onError(w, r, ref)
}

func validLine(s string) bool { return !strings.ContainsAny(s, "\r\n") }

func isClosedConnErr(err error) bool {
	return errors.Is(err, net.ErrClosed) || errors.Is(err, context.Canceled)
}

// isTimeout reports whether err is a write that hit its deadline.
func isTimeout(err error) bool {
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded)
}
