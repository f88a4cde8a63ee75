package egress

import (
	"context"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// serveConnect handles CONNECT: decide, dial the checked addresses, then
// copy bytes both ways until either side ends or the tunnel is idle.
func (p *Proxy) serveConnect(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	target := r.URL.Host // the authority-form request target
	if target == "" {
		target = r.Host
	}
	d := p.policy.DecideHostPort(ctx, target)
	if !p.admit(w, r, d) {
		return
	}
	defer p.release()
	dctx, cancel := context.WithTimeout(ctx, p.connectTimeout)
	upstream, err := p.policy.dialDecided(dctx, "tcp", d)
	cancel()
	if err != nil {
		p.forwardError(w, r, err)
		return
	}
	client, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		_ = upstream.Close()
		p.onError(w, r, &ProxyError{Status: http.StatusHTTPVersionNotSupported, Reason: "connect_unsupported", Detail: "CONNECT needs HTTP/1.1", Decision: d, err: err})
		return
	}
	if !p.track(client, upstream) {
		_ = client.Close()
		_ = upstream.Close()
		return
	}
	defer p.untrack(client, upstream)
	_ = client.SetDeadline(time.Time{})
	if _, err := io.WriteString(client, "HTTP/1.1 200 Connection Established\r\n\r\n"); err != nil {
		return
	}
	if n := brw.Reader.Buffered(); n > 0 {
		buf, _ := brw.Reader.Peek(n)
		if _, err := upstream.Write(buf); err != nil {
			return
		}
	}
	p.log.DebugContext(ctx, "egress tunnel open", "host", d.Host, "port", d.Port)
	p.pipe(client, upstream)
}

// track registers a tunnel's connections so Close can end them; false when
// the proxy is closed.
func (p *Proxy) track(cs ...net.Conn) bool {
	p.connsMu.Lock()
	defer p.connsMu.Unlock()
	if p.closed {
		return false
	}
	for _, c := range cs {
		p.conns[c] = struct{}{}
	}
	p.wg.Add(1)
	return true
}

func (p *Proxy) untrack(cs ...net.Conn) {
	p.connsMu.Lock()
	for _, c := range cs {
		_ = c.Close()
		delete(p.conns, c)
	}
	p.connsMu.Unlock()
	p.wg.Done()
}

// pipe copies both ways until both directions end or the tunnel is idle
// for idleTimeout.
func (p *Proxy) pipe(a, b net.Conn) {
	var last atomic.Int64
	last.Store(time.Now().UnixNano())
	done := make(chan struct{}, 2)
	cp := func(dst, src net.Conn) {
		bp := proxyBuffers.Get().(*[]byte)
		defer func() { proxyBuffers.Put(bp); done <- struct{}{} }()
		buf := *bp
		for {
			_ = src.SetReadDeadline(time.Now().Add(p.idleTimeout))
			n, err := src.Read(buf)
			if n > 0 {
				last.Store(time.Now().UnixNano())
				_ = dst.SetWriteDeadline(time.Now().Add(p.idleTimeout))
				if _, werr := dst.Write(buf[:n]); werr != nil {
					_ = src.Close()
					_ = dst.Close()
					return
				}
			}
			if err != nil {
				if isTimeout(err) && time.Since(time.Unix(0, last.Load())) < p.idleTimeout {
					continue
				}
				if cw, ok := dst.(interface{ CloseWrite() error }); ok && !isTimeout(err) {
					_ = cw.CloseWrite()
				} else {
					_ = dst.Close()
					_ = src.Close()
				}
				return
			}
		}
	}
	go cp(b, a)
	go cp(a, b)
	<-done
	<-done
}
