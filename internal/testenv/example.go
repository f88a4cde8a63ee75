package testenv

import (
	"bytes"
	"io"
	"os"
	"testing"
)

// RunExample runs an Example function that go test cannot check (it needs
// a server) and returns what it printed, so a test can compare it. It
// replaces os.Stdout while fn runs: tests using it must not run in parallel.
func RunExample(t testing.TB, fn func()) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatalf("testenv: pipe: %v", err)
	}
	stdout := os.Stdout
	os.Stdout = w
	out := make(chan string, 1)
	go func() {
		var b bytes.Buffer
		_, _ = io.Copy(&b, r)
		out <- b.String()
	}()
	defer func() {
		os.Stdout = stdout
		_ = w.Close()
		if p := recover(); p != nil {
			<-out
			panic(p)
		}
	}()
	fn()
	os.Stdout = stdout
	_ = w.Close()
	return <-out
}
