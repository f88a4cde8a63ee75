package streamauth

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/systembuilderhub/hardening"
)

// WebSocket close codes sent when the registry drops a stream.
const (
	// CloseTokenExpired (4001, reason "token_expired"): the credential
	// expired; the client may get a new token and reconnect.
	CloseTokenExpired websocket.StatusCode = 4001
	// CloseForbidden (4003): reason "revoked", "tenant_mismatch" or
	// "refresh_rejected".
	CloseForbidden websocket.StatusCode = 4003
)

// WSHandler serves one authenticated WebSocket. ServeWS must return when ctx
// is done; the connection is then closed with the code of the drop reason.
type WSHandler interface {
	ServeWS(ctx context.Context, c *WSConn) error
}

// WSHandlerFunc adapts a function to [WSHandler].
type WSHandlerFunc func(ctx context.Context, c *WSConn) error

// ServeWS calls f(ctx, c).
func (f WSHandlerFunc) ServeWS(ctx context.Context, c *WSConn) error { return f(ctx, c) }

// ForwardWS is a WSHandler that sends every event published to the
// connection's tenant (Registry.Publish) until the stream ends.
var ForwardWS WSHandler = WSHandlerFunc(func(ctx context.Context, c *WSConn) error {
	events := c.Events()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev := <-events:
			if err := c.Send(ctx, ev); err != nil {
				return err
			}
		}
	}
})

type wsHandler struct {
	adm admission
	h   WSHandler
}

// WebSocket returns a handler that authenticates each request with auth
// before the upgrade (401 problem+json on failure), records the connection
// in reg and serves it with h. The server reads the connection itself:
// {"type":"refresh","token":"..."} messages extend the stream's expiry when
// the token passes every check opening a stream does (authentication,
// expiry, revocations) and names the same user and tenant (the reply is
// {"type":"refreshed","expires_at":...}); any other refresh closes the
// connection with 4003 (refresh_rejected, or tenant_mismatch for another
// tenant's token) and leaves the expiry as it was. Other messages are delivered by WSConn.Messages.
// On expiry the connection closes with 4001 token_expired, on revocation
// 4003 revoked, on tenant mismatch 4003 tenant_mismatch, on shutdown 1001.
func WebSocket(auth hardening.Authenticator, reg *Registry, h WSHandler, opts ...HandlerOption) (http.Handler, error) {
	if h == nil {
		return nil, errors.New("streamauth: nil WSHandler")
	}
	adm, err := newAdmission(auth, reg, opts)
	if err != nil {
		return nil, err
	}
	return &wsHandler{adm: adm, h: h}, nil
}

// WSConn is one authenticated WebSocket. Send and the accessors are safe for
// concurrent use; the server owns reading.
type WSConn struct {
	st   *stream
	ctx  context.Context
	req  *http.Request
	c    *websocket.Conn
	raw  net.Conn // the hijacked connection, nil when it could not be seen
	wt   time.Duration
	auth hardening.Authenticator
	log  *slog.Logger

	msgs   chan []byte // client messages other than refreshes
	wanted atomic.Bool // Messages was called: apply backpressure

	kaMu  sync.Mutex
	ka    *time.Timer
	every time.Duration
	ended bool
}

func (h *wsHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !isWebSocketUpgrade(r) {
		// Refused before admission: no stream is registered for a request
		// that cannot become one.
		w.Header().Set("Upgrade", "websocket")
		w.Header().Set("Connection", "Upgrade")
		h.adm.cfg.onError(w, r, &RefusedError{Status: http.StatusUpgradeRequired, Reason: reasonWebSocketUpgradeRequired})
		return
	}
	st, ctx, req, ok := h.adm.admit(w, r, KindWebSocket)
	if !ok {
		return
	}
	cw := captureConn(w)
	c, err := websocket.Accept(cw, r, h.adm.cfg.acceptOptions)
	if err != nil { // Accept answered the request.
		st.drop(ReasonClientClosed)
		st.finish()
		return
	}
	c.SetReadLimit(h.adm.cfg.readLimit)
	wc := &WSConn{st: st, ctx: ctx, req: req, c: c, auth: h.adm.auth, log: h.adm.reg.cfg.log,
		every: h.adm.reg.cfg.keepAlive, msgs: make(chan []byte, 8), wt: h.adm.cfg.writeTimeout}
	if cc, ok := cw.(*connCapture); ok {
		wc.raw = cc.conn
	}
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		wc.readLoop()
	}()
	if wc.every > 0 {
		wc.kaMu.Lock()
		wc.ka = time.AfterFunc(wc.every, wc.ping)
		wc.kaMu.Unlock()
	}
	closed := make(chan struct{})
	context.AfterFunc(ctx, func() {
		defer close(closed)
		wc.closeFor()
	})

	if err := h.h.ServeWS(ctx, wc); err != nil && ctx.Err() == nil {
		wc.log.LogAttrs(ctx, slog.LevelDebug, "streamauth: WebSocket handler error",
			slog.String("stream_id", st.info.ID), slog.String("error", err.Error()))
	}
	st.drop(ReasonCompleted) // no-op when already dropped
	<-closed
	_ = c.CloseNow()
	<-readDone
	st.finish()
}

// closeFor closes the connection with the code of the stream's drop reason.
// The connection's deadline bounds the close handshake, and any write still
// blocked on a client that does not read, by the write timeout.
func (wc *WSConn) closeFor() {
	wc.kaMu.Lock()
	wc.ended = true
	if wc.ka != nil {
		wc.ka.Stop()
	}
	wc.kaMu.Unlock()
	if wc.raw != nil {
		_ = wc.raw.SetDeadline(time.Now().Add(wc.wt))
	}
	reason, _ := DropReason(wc.ctx)
	switch reason {
	case ReasonExpired:
		_ = wc.c.Close(CloseTokenExpired, "token_expired")
	case ReasonRevoked, ReasonTenantMismatch, ReasonRefreshRejected:
		_ = wc.c.Close(CloseForbidden, string(reason))
	case ReasonShutdown:
		_ = wc.c.Close(websocket.StatusGoingAway, "shutdown")
	case ReasonCompleted:
		_ = wc.c.Close(websocket.StatusNormalClosure, "")
	default: // client gone
		_ = wc.c.CloseNow()
	}
}

func (wc *WSConn) ping() {
	wc.kaMu.Lock()
	if wc.ended {
		wc.kaMu.Unlock()
		return
	}
	wc.kaMu.Unlock()
	ctx, cancel := wc.writeContext(wc.ctx)
	err := wc.c.Ping(ctx)
	cancel()
	wc.kaMu.Lock()
	defer wc.kaMu.Unlock()
	if err == nil && !wc.ended {
		wc.ka.Reset(wc.every)
	}
}

type wsInbound struct {
	Type  string `json:"type"`
	Token string `json:"token"`
}

// readLoop reads until the connection fails or closes, handling refreshes.
func (wc *WSConn) readLoop() {
	for {
		// A context without Done: coder/websocket would close the
		// connection (without our close code) when a read context ends.
		typ, b, err := wc.c.Read(context.Background())
		if err != nil {
			// A no-op when the stream was dropped already. Before a drop,
			// only coder/websocket closes the connection on this side, when
			// a write (a message or a ping) ran past its deadline.
			reason := ReasonClientClosed
			if errors.Is(err, net.ErrClosed) {
				reason = ReasonWriteTimeout
			}
			wc.st.drop(reason)
			return
		}
		if typ == websocket.MessageText && len(b) > 0 && b[0] == '{' {
			var in wsInbound
			if json.Unmarshal(b, &in) == nil && in.Type == "refresh" {
				wc.refresh(in.Token)
				continue
			}
		}
		if !wc.wanted.Load() {
			select { // keep a few until the handler asks; drop the rest
			case wc.msgs <- b:
			default:
			}
			continue
		}
		select {
		case wc.msgs <- b:
		case <-wc.ctx.Done():
			return
		}
	}
}

func (wc *WSConn) refresh(token string) {
	info := wc.st.snapshot()
	p, err := wc.authenticateToken(token)
	if err == nil {
		// What opening a stream checks besides authentication:
		// expiry and revocations.
		err = wc.st.reg.admissible(p)
	}
	reason, why := ReasonRefreshRejected, ""
	switch {
	case err != nil:
		why = authReason(err)
	case p.Subject != info.Subject:
		why = "user_mismatch"
	case p.Tenant != info.Tenant:
		reason, why = ReasonTenantMismatch, string(ReasonTenantMismatch)
	default:
		if !wc.st.extend(p.ExpiresAt) {
			return
		}
		wc.log.LogAttrs(wc.ctx, slog.LevelInfo, "streamauth: stream refreshed",
			slog.String("event", "refreshed"), slog.String("stream_id", info.ID),
			slog.String("user_id", info.Subject), slog.String("tenant_id", info.Tenant),
			slog.Time("expires_at", p.ExpiresAt))
		msg, _ := json.Marshal(struct {
			Type      string    `json:"type"`
			ExpiresAt time.Time `json:"expires_at"`
		}{"refreshed", p.ExpiresAt})
		_ = wc.Write(wc.ctx, msg)
		return
	}
	wc.log.LogAttrs(wc.ctx, slog.LevelWarn, "streamauth: refresh rejected",
		slog.String("event", "refresh_rejected"), slog.String("reason", why),
		slog.String("stream_id", info.ID), slog.String("user_id", info.Subject),
		slog.String("tenant_id", info.Tenant))
	wc.st.drop(reason)
}

func (wc *WSConn) authenticateToken(token string) (hardening.Caller, error) {
	if token == "" {
		return hardening.Caller{}, ErrNoCredentials
	}
	if ta, ok := wc.auth.(TokenAuthenticator); ok {
		return ta.AuthenticateToken(wc.ctx, token)
	}
	r, err := http.NewRequestWithContext(wc.ctx, http.MethodGet, "/", nil)
	if err != nil {
		return hardening.Caller{}, err
	}
	r.Header.Set("Authorization", "Bearer "+token)
	return wc.auth.Authenticate(r)
}

type wsOutbound struct {
	Type  string `json:"type"`
	ID    string `json:"id,omitempty"`
	Event string `json:"event,omitempty"`
	Data  any    `json:"data,omitempty"`
}

// Send writes ev as the text message
// {"type":"event","id":..,"event":..,"data":..}. It returns
// ErrStreamClosed once the stream ended and ErrTenantMismatch (dropping the
// stream) when ev belongs to another tenant.
func (wc *WSConn) Send(ctx context.Context, ev Event) error {
	if err := wc.st.checkTenant(ev); err != nil {
		return err
	}
	if wc.ctx.Err() != nil {
		return ErrStreamClosed
	}
	out := wsOutbound{Type: "event", ID: ev.ID, Event: ev.Type}
	if len(ev.Data) > 0 {
		if json.Valid(ev.Data) {
			out.Data = json.RawMessage(ev.Data)
		} else {
			out.Data = string(ev.Data)
		}
	}
	b, err := json.Marshal(out)
	if err != nil {
		return err
	}
	return wc.Write(ctx, b)
}

// writeContext bounds a write by the write timeout but not by ctx's
// cancellation: coder/websocket closes the connection abruptly when a
// write's context ends, which would race the close frame the registry's
// drop sends (4001/4003) when the stream context is cancelled. Values of
// ctx are kept.
func (wc *WSConn) writeContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), wc.wt)
}

// Write sends one text message within the write timeout. It does not check
// tenants; prefer Send for tenant data. A write that times out (the client
// stopped reading) closes the connection and drops the stream as
// write_timeout.
func (wc *WSConn) Write(ctx context.Context, msg []byte) error {
	if wc.ctx.Err() != nil {
		return ErrStreamClosed
	}
	wctx, cancel := wc.writeContext(ctx)
	defer cancel()
	if err := wc.c.Write(wctx, websocket.MessageText, msg); err != nil {
		if wctx.Err() != nil && isTimeout(err) {
			wc.st.drop(ReasonWriteTimeout)
		}
		if wc.ctx.Err() != nil || isClosedConnErr(err) {
			return ErrStreamClosed
		}
		return err
	}
	return nil
}

// Messages returns the client's messages other than refreshes. Until it is
// first called, the first messages (up to 8) are kept for it and later ones
// discarded; once called, the server stops reading while the channel is
// full (refreshes then wait too), so a handler that asks must keep reading.
func (wc *WSConn) Messages() <-chan []byte {
	wc.wanted.Store(true)
	return wc.msgs
}

// Events returns the channel of events published to the connection's
// tenant with Registry.Publish.
func (wc *WSConn) Events() <-chan Event { return wc.st.eventsChan() }

// Caller returns the connection's caller as authenticated at open.
func (wc *WSConn) Caller() hardening.Caller { p, _ := FromContext(wc.ctx); return p }

// Info returns the stream's registry record (ExpiresAt moves on refresh).
func (wc *WSConn) Info() StreamInfo { return wc.st.snapshot() }

// Request returns the upgrade request, with the stream's context and no
// query token.
func (wc *WSConn) Request() *http.Request { return wc.req }

// isWebSocketUpgrade reports whether r asks for a WebSocket handshake: a GET
// whose Connection header has the "upgrade" token and whose Upgrade header
// names "websocket" (RFC 6455 section 4.1). The handshake's other fields are
// checked by websocket.Accept.
func isWebSocketUpgrade(r *http.Request) bool {
	return r.Method == http.MethodGet && headerHasToken(r.Header, "Connection", "upgrade") && headerHasToken(r.Header, "Upgrade", "websocket")
}

func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// connCapture passes the ResponseWriter to websocket.Accept and records the
// connection Accept hijacks.
type connCapture struct {
	http.ResponseWriter
	conn net.Conn
}

// captureConn wraps w when it can be hijacked (as websocket.Accept looks
// for it: directly or through Unwrap); otherwise w is returned unchanged and
// Accept answers as it does without the wrapper.
func captureConn(w http.ResponseWriter) http.ResponseWriter {
	for rw := w; ; {
		switch t := rw.(type) {
		case http.Hijacker:
			return &connCapture{ResponseWriter: w}
		case interface{ Unwrap() http.ResponseWriter }:
			rw = t.Unwrap()
		default:
			return w
		}
	}
}

// Hijack hijacks the underlying connection and records it.
func (c *connCapture) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(c.ResponseWriter).Hijack()
	c.conn = conn
	return conn, brw, err
}

// Unwrap returns the wrapped ResponseWriter.
func (c *connCapture) Unwrap() http.ResponseWriter { return c.ResponseWriter }
