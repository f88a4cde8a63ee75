package streamauth

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// SSEHandler serves one authenticated event stream. ServeSSE must return
// when ctx is done (expiry, revocation, tenant mismatch, client gone or
// shutdown); its error is only logged.
type SSEHandler interface {
	ServeSSE(ctx context.Context, s *SSEStream) error
}

// SSEHandlerFunc adapts a function to [SSEHandler].
type SSEHandlerFunc func(ctx context.Context, s *SSEStream) error

// ServeSSE calls f(ctx, s).
func (f SSEHandlerFunc) ServeSSE(ctx context.Context, s *SSEStream) error { return f(ctx, s) }

// ForwardSSE is an SSEHandler that sends every event published to the
// stream's tenant (Registry.Publish) until the stream ends.
var ForwardSSE SSEHandler = SSEHandlerFunc(func(ctx context.Context, s *SSEStream) error {
	events := s.Events()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev := <-events:
			if err := s.Send(ev); err != nil {
				return err
			}
		}
	}
})

type sseHandler struct {
	adm admission
	h   SSEHandler
}

// SSE returns a handler that authenticates each request with auth, records
// the stream in reg and serves it with h. Failed authentication is answered
// 401 problem+json before any stream byte; a stream over a limit 429. The
// stream's context carries the principal ([FromContext]) and is cancelled
// at expiry, on revocation, on tenant mismatch and when the client goes
// away; on expiry the client receives a final "event: auth_expired" (on
// revocation "auth_revoked", on mismatch "tenant_mismatch"). Keep-alive
// comments are sent when the stream is idle for the registry's keep-alive
// interval. Writes flush through http.ResponseController, so wrapped
// ResponseWriters that implement Unwrap work.
func SSE(auth Authenticator, reg *Registry, h SSEHandler, opts ...HandlerOption) (http.Handler, error) {
	if h == nil {
		return nil, errors.New("streamauth: nil SSEHandler")
	}
	adm, err := newAdmission(auth, reg, opts)
	if err != nil {
		return nil, err
	}
	return &sseHandler{adm: adm, h: h}, nil
}

// SSEStream is the writing end of one event stream. Its methods are safe
// for concurrent use.
type SSEStream struct {
	st  *stream
	ctx context.Context
	req *http.Request
	w   http.ResponseWriter
	rc  *http.ResponseController

	mu     sync.Mutex
	closed bool
	ka     *time.Timer
	every  time.Duration
	buf    bytes.Buffer
}

func (h *sseHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	st, ctx, req, ok := h.adm.admit(w, r, KindSSE)
	if !ok {
		return
	}
	ss := &SSEStream{st: st, ctx: ctx, req: req, w: w, rc: http.NewResponseController(w), every: h.adm.reg.cfg.keepAlive}
	hd := w.Header()
	hd.Set("Content-Type", "text/event-stream")
	hd.Set("Cache-Control", "no-cache")
	hd.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	ss.mu.Lock()
	if err := ss.rc.Flush(); err != nil {
		ss.closed = true
	}
	if ss.every > 0 && !ss.closed {
		ss.ka = time.AfterFunc(ss.every, ss.keepAlive)
	}
	ss.mu.Unlock()
	stop := context.AfterFunc(ctx, ss.end)
	defer func() {
		reason := ReasonCompleted
		if r.Context().Err() != nil {
			reason = ReasonClientClosed
		}
		stop()
		st.drop(reason)
		ss.end()
		st.finish()
	}()
	if err := h.h.ServeSSE(ctx, ss); err != nil && !errors.Is(err, ErrStreamClosed) && ctx.Err() == nil {
		h.adm.reg.cfg.log.LogAttrs(ctx, slog.LevelDebug, "streamauth: SSE handler error",
			slog.String("stream_id", st.info.ID), slog.String("error", err.Error()))
	}
}

// end writes the final event named by the drop reason, if any, and closes
// the stream for writes. It runs when the stream context is done and when
// the handler returned; only the first call writes.
func (ss *SSEStream) end() {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.closed {
		return
	}
	ss.closed = true
	if ss.ka != nil {
		ss.ka.Stop()
	}
	reason, ok := DropReason(ss.ctx)
	if !ok {
		return
	}
	var name string
	switch reason {
	case ReasonExpired:
		name = "auth_expired"
	case ReasonRevoked:
		name = "auth_revoked"
	case ReasonTenantMismatch:
		name = "tenant_mismatch"
	case ReasonShutdown:
		name = "shutdown"
	default:
		return
	}
	ss.buf.Reset()
	ss.buf.WriteString("event: ")
	ss.buf.WriteString(name)
	ss.buf.WriteString("\ndata: {\"reason\":\"")
	ss.buf.WriteString(string(reason))
	ss.buf.WriteString("\"}\n\n")
	if _, err := ss.w.Write(ss.buf.Bytes()); err == nil {
		_ = ss.rc.Flush()
	}
}

func (ss *SSEStream) keepAlive() {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.closed {
		return
	}
	if ss.writeLocked([]byte(": keep-alive\n\n")) {
		ss.ka.Reset(ss.every)
	}
}

// writeLocked writes and flushes b; on failure the stream is closed and
// dropped as client_closed.
func (ss *SSEStream) writeLocked(b []byte) bool {
	_, err := ss.w.Write(b)
	if err == nil {
		err = ss.rc.Flush()
	}
	if err != nil {
		ss.closed = true
		if ss.ka != nil {
			ss.ka.Stop()
		}
		ss.st.drop(ReasonClientClosed) // its context.AfterFunc runs in another goroutine
		return false
	}
	return true
}

// Send writes ev to the client and flushes it. It returns ErrStreamClosed
// once the stream has ended, and ErrTenantMismatch (dropping the stream)
// when ev belongs to another tenant.
func (ss *SSEStream) Send(ev Event) error {
	if !validLine(ev.ID) || !validLine(ev.Type) {
		return errors.New("streamauth: event id and type must not contain newlines")
	}
	if err := ss.st.checkTenant(ev); err != nil {
		return err
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.closed || ss.ctx.Err() != nil {
		return ErrStreamClosed
	}
	b := &ss.buf
	b.Reset()
	if ev.ID != "" {
		b.WriteString("id: ")
		b.WriteString(ev.ID)
		b.WriteByte('\n')
	}
	if ev.Type != "" {
		b.WriteString("event: ")
		b.WriteString(ev.Type)
		b.WriteByte('\n')
	}
	data := ev.Data
	for {
		line, rest, more := bytes.Cut(data, []byte("\n"))
		b.WriteString("data: ")
		b.Write(bytes.TrimSuffix(line, []byte("\r")))
		b.WriteByte('\n')
		if !more {
			break
		}
		data = rest
	}
	b.WriteByte('\n')
	if !ss.writeLocked(b.Bytes()) {
		return ErrStreamClosed
	}
	if ss.ka != nil {
		ss.ka.Reset(ss.every)
	}
	return nil
}

// Events returns the channel of events published to the stream's tenant
// with Registry.Publish.
func (ss *SSEStream) Events() <-chan Event { return ss.st.eventsChan() }

// LastEventID returns the client's Last-Event-ID header ("" on a fresh
// connection), so the handler can resume after it.
func (ss *SSEStream) LastEventID() string { return ss.req.Header.Get("Last-Event-ID") }

// Principal returns the stream's principal.
func (ss *SSEStream) Principal() Principal { p, _ := FromContext(ss.ctx); return p }

// Info returns the stream's registry record.
func (ss *SSEStream) Info() StreamInfo { return ss.st.snapshot() }

// Request returns the stream's request: its context is the stream's and its
// URL carries no query token.
func (ss *SSEStream) Request() *http.Request { return ss.req }
