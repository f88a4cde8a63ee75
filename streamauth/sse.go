package streamauth

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/systembuilderhub/hardening"
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
// interval. Every write has a deadline (WithWriteTimeout, default 10s) and
// flushes through http.ResponseController, so wrapped ResponseWriters that
// implement Unwrap work. A client that stops reading is dropped as
// write_timeout; a dropped stream's connection is closed within the write
// timeout even when its client does not read.
func SSE(auth hardening.Authenticator, reg *Registry, h SSEHandler, opts ...HandlerOption) (http.Handler, error) {
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

	wt  time.Duration // write timeout
	log *slog.Logger

	mu       sync.Mutex
	closed   bool
	failed   bool // a write failed: the connection is broken
	noDeadln bool // the ResponseWriter cannot set write deadlines (logged once)
	ka       *time.Timer
	every    time.Duration
	buf      bytes.Buffer
}

func (h *sseHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	st, ctx, req, ok := h.adm.admit(w, r, KindSSE)
	if !ok {
		return
	}
	ss := &SSEStream{st: st, ctx: ctx, req: req, w: w, rc: http.NewResponseController(w),
		every: h.adm.reg.cfg.keepAlive, wt: h.adm.cfg.writeTimeout, log: h.adm.reg.cfg.log}
	hd := w.Header()
	hd.Set("Content-Type", "text/event-stream")
	hd.Set("Cache-Control", "no-cache")
	hd.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	ss.mu.Lock()
	ss.writeLocked(nil) // the headers, at once
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
		ss.mu.Lock()
		if !ss.failed {
			// Bound the server's last flush (the end of the chunked
			// body); net/http clears the deadline after it.
			_ = ss.setDeadlineLocked()
		}
		ss.mu.Unlock()
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
	ss.writeLocked(ss.buf.Bytes()) // the stream is dropped already
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

// writeLocked writes and flushes b within the write timeout; on failure the
// stream is closed and dropped as write_timeout (the deadline passed) or
// client_closed.
func (ss *SSEStream) writeLocked(b []byte) bool {
	err := ss.setDeadlineLocked()
	if err == nil && len(b) > 0 {
		_, err = ss.w.Write(b)
	}
	if err == nil {
		err = ss.rc.Flush()
	}
	if err != nil {
		ss.closed, ss.failed = true, true
		if ss.ka != nil {
			ss.ka.Stop()
		}
		reason := ReasonClientClosed
		if isTimeout(err) {
			reason = ReasonWriteTimeout
		}
		ss.st.drop(reason) // its context.AfterFunc runs in another goroutine
		return false
	}
	return true
}

// setDeadlineLocked sets the connection's write deadline to now plus the
// write timeout. A ResponseWriter that cannot (one that wraps the server's
// without Unwrap) leaves the stream without deadlines, logged once.
func (ss *SSEStream) setDeadlineLocked() error {
	if ss.noDeadln {
		return nil
	}
	err := ss.rc.SetWriteDeadline(time.Now().Add(ss.wt))
	if errors.Is(err, http.ErrNotSupported) {
		ss.noDeadln = true
		ss.log.LogAttrs(ss.ctx, slog.LevelWarn, "streamauth: SSE writes have no deadline: the ResponseWriter does not support SetWriteDeadline (give wrappers an Unwrap method)",
			slog.String("event", "no_write_deadline"), slog.String("stream_id", ss.st.info.ID))
		return nil
	}
	return err
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
// with Registry.Publish (and Broadcast) since the stream was registered:
// events published before the handler first calls Events wait in it, up
// to the registry's event buffer.
func (ss *SSEStream) Events() <-chan Event { return ss.st.eventsChan() }

// LastEventID returns the client's Last-Event-ID header ("" on a fresh
// connection), so the handler can resume after it.
func (ss *SSEStream) LastEventID() string { return ss.req.Header.Get("Last-Event-ID") }

// Caller returns the stream's caller.
func (ss *SSEStream) Caller() hardening.Caller { p, _ := FromContext(ss.ctx); return p }

// Info returns the stream's registry record.
func (ss *SSEStream) Info() StreamInfo { return ss.st.snapshot() }

// Request returns the stream's request: its context is the stream's and its
// URL carries no query token.
func (ss *SSEStream) Request() *http.Request { return ss.req }
