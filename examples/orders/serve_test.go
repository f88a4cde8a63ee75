package main

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestServe runs the service as main does, on SQLite, answers one request
// on the address it printed and shuts down when its context ends.
func TestServe(t *testing.T) {
	env := map[string]string{"ORDERS_AUTH_SECRET": testSecret, "ORDERS_ADDR": "127.0.0.1:0",
		"ORDERS_DATABASE_URL": "sqlite:///" + filepath.Join(t.TempDir(), "o.db")}
	ctx, cancel := context.WithCancel(t.Context())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, func(k string) string { return env[k] }, slog.New(slog.DiscardHandler), pw)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	go io.Copy(io.Discard, pr)
	addr := strings.TrimSpace(strings.TrimPrefix(line, "listening on "))
	tok, _ := sign([]byte(testSecret), "alice", "acme", false, time.Hour, time.Now())
	req, _ := http.NewRequest("POST", "http://"+addr+"/orders", strings.NewReader(`{"sku":"tea","qty":1}`))
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("status %d", resp.StatusCode)
	}
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
