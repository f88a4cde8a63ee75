package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestServe runs the service as main does, on SQLite, answers one request
// on the address it printed and shuts down when its context ends.
func TestServe(t *testing.T) {
	addr, stop := runServe(t, map[string]string{"ORDERS_AUTH_SECRET": testSecret, "ORDERS_ADDR": "127.0.0.1:0",
		"ORDERS_DATABASE_URL": "sqlite:///" + filepath.Join(t.TempDir(), "o.db")}, io.Discard)
	tok, _ := sign([]byte(testSecret), "alice", "acme", false, time.Hour)
	if status := post(t, addr, "/orders", tok, `{"sku":"tea","qty":1}`); status != http.StatusCreated {
		t.Fatalf("status %d", status)
	}
	stop()
}

// TestDevStart: without ORDERS_AUTH_SECRET on a loopback address the
// service starts on a random secret and logs a user's and an admin's
// token, which it accepts; a set secret signs no such token.
func TestDevStart(t *testing.T) {
	var logs syncBuffer
	addr, stop := runServe(t, map[string]string{"ORDERS_ADDR": "127.0.0.1:0"}, &logs)
	out := logs.String()
	if !strings.Contains(out, "ORDERS_AUTH_SECRET is not set") || !strings.Contains(out, "go run ./examples/orders token") {
		t.Fatalf("no notice naming ORDERS_AUTH_SECRET and the token command in %s", out)
	}
	toks := map[string]string{}
	for _, m := range regexp.MustCompile(`sub=(\w+) org=acme admin=\w+ ttl=1h token=(\S+)`).FindAllStringSubmatch(out, -1) {
		toks[m[1]] = m[2]
	}
	if len(toks) != 2 || toks["alice"] == "" || toks["root"] == "" {
		t.Fatalf("tokens %v in %s", toks, out)
	}
	if s := post(t, addr, "/orders", toks["alice"], `{"sku":"tea","qty":1}`); s != http.StatusCreated {
		t.Fatalf("alice's order: %d", s)
	}
	on := `{"enabled":true,"org":"acme","reason":"try"}`
	if s := post(t, addr, "/admin/features/express_shipping", toks["alice"], on); s != http.StatusForbidden {
		t.Fatalf("alice toggles: %d", s)
	}
	if s := post(t, addr, "/admin/features/express_shipping", toks["root"], on); s != http.StatusOK {
		t.Fatalf("root toggles: %d", s)
	}
	testTok, _ := sign([]byte(testSecret), "alice", "acme", false, time.Hour)
	if s := post(t, addr, "/orders", testTok, `{"sku":"tea","qty":1}`); s != http.StatusUnauthorized {
		t.Fatalf("a token of another secret: %d", s)
	}
	stop()

	var setLogs syncBuffer
	_, stop = runServe(t, map[string]string{"ORDERS_ADDR": "127.0.0.1:0", "ORDERS_AUTH_SECRET": testSecret}, &setLogs)
	stop()
	if strings.Contains(setLogs.String(), "token=") {
		t.Fatalf("tokens logged under a set secret: %s", setLogs.String())
	}
}

// runServe runs serve with env, logging to logs, until stop, which fails
// the test unless serve returns nil within 10 s. It returns the address
// serve printed.
func runServe(t *testing.T, env map[string]string, logs io.Writer) (addr string, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, func(k string) string { return env[k] }, slog.New(slog.NewTextHandler(logs, nil)), pw)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		cancel()
		t.Fatal(err, <-done)
	}
	go io.Copy(io.Discard, pr)
	return strings.TrimSpace(strings.TrimPrefix(line, "listening on ")), func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("serve did not return within 10 s of its context's end")
		}
	}
}

// post sends body to addr+path with a bearer token and returns the status.
func post(t *testing.T, addr, path, tok, body string) int {
	t.Helper()
	req, _ := http.NewRequest("POST", "http://"+addr+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// syncBuffer is a bytes.Buffer safe for a logger and a test at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
