package streamauth_test

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

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

// BenchmarkAuthenticate is the HS256 token check alone, of one token
// presented again and again: with the token cache (a hit) and without it
// (WithTokenCache(0)), and golang-jwt's jwt.Parse with the same key and
// method as the baseline.
//
//	go test ./streamauth -run '^$' -bench Authenticate -benchmem -count 5
func BenchmarkAuthenticate(b *testing.B) {
	for _, bc := range []struct {
		name string
		opts []streamauth.JWTOption
	}{{"cached", nil}, {"uncached", []streamauth.JWTOption{streamauth.WithTokenCache(0)}}} {
		b.Run(bc.name, func(b *testing.B) {
			auth := newAuth(b, bc.opts...)
			tok := token(b, auth, "u", "t", time.Now().Add(time.Hour))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := auth.AuthenticateToken(context.Background(), tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("golangjwt", func(b *testing.B) {
		auth := newAuth(b)
		tok := token(b, auth, "u", "t", time.Now().Add(time.Hour))
		parse := golangJWTParse()
		b.ReportAllocs()
		for b.Loop() {
			if err := parse(tok); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// golangJWTParse is the baseline: jwt.Parse with the same key, method and
// checks as NewJWT's defaults.
func golangJWTParse() func(string) error {
	keyFunc := func(*jwt.Token) (any, error) { return testSecret, nil }
	return func(tok string) error {
		_, err := jwt.Parse(tok, keyFunc, jwt.WithValidMethods([]string{"HS256"}), jwt.WithExpirationRequired())
		return err
	}
}

// BenchmarkAuthenticateInterleaved runs the cached and uncached
// authenticators and golang-jwt in alternating batches, so load changes on
// a shared machine hit all three alike, and reports each one's ns/op and
// the ratios to golang-jwt (goal for the cached one: at most 0.2).
//
//	go test ./streamauth -run '^$' -bench AuthenticateInterleaved -count 5
func BenchmarkAuthenticateInterleaved(b *testing.B) {
	const batch = 32
	cached, uncached := newAuth(b), newAuth(b, streamauth.WithTokenCache(0))
	tok := token(b, cached, "u", "t", time.Now().Add(time.Hour))
	parse := golangJWTParse()
	ctx := context.Background()
	var hit, full, base time.Duration
	for b.Loop() {
		t0 := time.Now()
		for range batch {
			if _, err := cached.AuthenticateToken(ctx, tok); err != nil {
				b.Fatal(err)
			}
		}
		t1 := time.Now()
		for range batch {
			if _, err := uncached.AuthenticateToken(ctx, tok); err != nil {
				b.Fatal(err)
			}
		}
		t2 := time.Now()
		for range batch {
			if err := parse(tok); err != nil {
				b.Fatal(err)
			}
		}
		t3 := time.Now()
		hit += t1.Sub(t0)
		full += t2.Sub(t1)
		base += t3.Sub(t2)
	}
	n := float64(b.N * batch)
	b.ReportMetric(float64(hit)/n, "cached-ns/op")
	b.ReportMetric(float64(full)/n, "uncached-ns/op")
	b.ReportMetric(float64(base)/n, "golangjwt-ns/op")
	b.ReportMetric(float64(hit)/float64(base), "cached/golangjwt")
	b.ReportMetric(float64(full)/float64(base), "uncached/golangjwt")
}
