package streamauth_test

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/systembuilderhub/hardening/streamauth"
)

// BenchmarkStreamOpen opens a stream over loopback, reads its one event and
// lets it end, for a bare SSE handler (the baseline) and for the same
// handler behind streamauth.SSE (token check, registry, timer).
func BenchmarkStreamOpen(b *testing.B) {
	auth := newAuth(b)
	reg := newRegistry(b, streamauth.WithKeepAlive(-1))
	tok := token(b, auth, "u", "t", time.Now().Add(time.Hour))
	authH, err := streamauth.SSE(auth, reg, streamauth.SSEHandlerFunc(func(ctx context.Context, s *streamauth.SSEStream) error {
		return s.Send(streamauth.Event{Type: "hello", Data: []byte("1")})
	}))
	if err != nil {
		b.Fatal(err)
	}
	bare := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, "event: hello\ndata: 1\n\n")
		_ = http.NewResponseController(w).Flush()
	})
	for _, bc := range []struct {
		name string
		h    http.Handler
	}{{"bare", bare}, {"streamauth", authH}} {
		b.Run(bc.name, func(b *testing.B) {
			srv := serve(b, bc.h)
			c := httpClient(b)
			req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			b.ReportAllocs()
			for b.Loop() {
				resp, err := c.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Fatal(resp.Status)
				}
			}
		})
	}
}

// BenchmarkAuthenticate is the HS256 token check alone.
func BenchmarkAuthenticate(b *testing.B) {
	auth := newAuth(b)
	tok := token(b, auth, "u", "t", time.Now().Add(time.Hour))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := auth.AuthenticateToken(context.Background(), tok); err != nil {
			b.Fatal(err)
		}
	}
}
