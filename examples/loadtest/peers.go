package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// The peer comparisons (the kit's rate decisions and token verification
// against sethvargo/go-limiter, go-redis/redis_rate and golang-jwt) live in
// the nested module examples/loadtest/peers, so the peers never enter the
// kit's go.mod. The load test runs that module's program with go -C after
// the HTTP load and prints its table; the same program runs alone with
// peersHint.

const (
	kitModule = "github.com/systembuilderhub/hardening"
	peersDir  = "examples/loadtest/peers"
	peersHint = "go -C " + peersDir + " run . [-redis URL]   (from the kit's root)"
)

// peersResult is the peers program's output: its Markdown table and its
// JSON result, embedded as they are.
type peersResult struct {
	Markdown string
	JSON     json.RawMessage
}

// runPeers runs the peers program on the same Redis as the load (miniredis
// in its own process when redisURL is empty).
func runPeers(ctx context.Context, redisURL, tmp string, logw io.Writer) (peersResult, error) {
	dir, err := findPeersDir(ctx)
	if err != nil {
		return peersResult{}, err
	}
	out := filepath.Join(tmp, "peers.json")
	args := []string{"-C", dir, "run", ".", "-out", out}
	if redisURL != "" {
		args = append(args, "-redis", redisURL)
	}
	fmt.Fprintln(logw, "loadtest: go", strings.Join(args, " "))
	cmd := exec.CommandContext(ctx, "go", args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return peersResult{}, fmt.Errorf("%v\n%s", err, tail(stderr.String(), 10))
	}
	js, err := os.ReadFile(out)
	if err != nil {
		return peersResult{}, err
	}
	return peersResult{Markdown: stdout.String(), JSON: js}, nil
}

// findPeersDir is the peers module's directory in the kit's source tree
// the go command sees from the working directory.
func findPeersDir(ctx context.Context) (string, error) {
	b, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(b))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("not inside the kit's source tree (no go.mod): run from the kit's root")
	}
	f, err := os.Open(gomod)
	if err != nil {
		return "", err
	}
	defer f.Close()
	first, _ := bufio.NewReader(f).ReadString('\n')
	if strings.TrimSpace(first) != "module "+kitModule {
		return "", fmt.Errorf("%s is not the kit's go.mod: run from the kit's root", gomod)
	}
	dir := filepath.Join(filepath.Dir(gomod), filepath.FromSlash(peersDir))
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		return "", fmt.Errorf("no peers module: %w", err)
	}
	return dir, nil
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
