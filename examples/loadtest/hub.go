package main

// Running the hub binary for the sqlite and redis stores, and timing one
// store round trip for the p99 bound.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/systembuilderhub/hardening/migrate"
)

// hubBinary returns bin, or builds examples/hub into dir.
func hubBinary(ctx context.Context, bin, dir string, logw io.Writer) (string, error) {
	if bin != "" {
		return bin, nil
	}
	out := filepath.Join(dir, "hub")
	fmt.Fprintln(logw, "loadtest: go build -o", out, "github.com/systembuilderhub/hardening/examples/hub")
	b, err := exec.CommandContext(ctx, "go", "build", "-o", out, "github.com/systembuilderhub/hardening/examples/hub").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build examples/hub: %v\n%s", err, b)
	}
	return out, nil
}

// startHub runs the hub binary on a loopback port with a fresh SQLite
// database (and Redis for store "redis"), the quotas set high and the auth
// secret given, and returns its URL once it listens.
func startHub(ctx context.Context, bin, store, redisURL, dbPath string, secret []byte) (string, func(), error) {
	cmd := exec.Command(bin, "serve")
	env := []string{}
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if name == "REDIS_URL" || name == "DATABASE_URL" || strings.HasPrefix(name, "HUB_") || strings.HasPrefix(name, "DEFAULT_") {
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "HUB_ADDR=127.0.0.1:0", "DATABASE_URL=sqlite:///"+dbPath, "HUB_AUTH_SECRET="+string(secret),
		fmt.Sprintf("DEFAULT_SNAPSHOT_RATE_PER_MINUTE=%d", highLimit), fmt.Sprintf("DEFAULT_ACTIVE_PREVIEWS_LIMIT=%d", highLimit))
	if store == "redis" {
		env = append(env, "REDIS_URL="+redisURL, "HUB_REDIS_PREFIX=loadtest:"+newRunID()+":")
	}
	cmd.Env = env
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return "", nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	done := make(chan struct{})
	stopIt := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}
	addrc := make(chan string, 1)
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		var tail []string
		found := false
		for !found && sc.Scan() {
			var rec struct {
				Msg  string `json:"msg"`
				Addr string `json:"addr"`
			}
			if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Msg == "hub listening" {
				addrc <- rec.Addr
				found = true
			}
			tail = append(tail, sc.Text())
		}
		if !found { // the hub failed: show why
			fmt.Fprintln(os.Stderr, strings.Join(tail[max(0, len(tail)-5):], "\n"))
		}
		_, _ = io.Copy(io.Discard, stderr) // the request log: read and dropped
		_ = cmd.Wait()
	}()
	select {
	case addr := <-addrc:
		return "http://" + addr, stopIt, nil
	case <-done:
		return "", nil, errors.New("the hub exited before listening")
	case <-time.After(60 * time.Second):
		stopIt()
		return "", nil, errors.New("the hub did not listen within 60s")
	case <-ctx.Done():
		stopIt()
		return "", nil, ctx.Err()
	}
}

// storeRTT is the median of one small write on the store: a SQLite
// autocommit upsert in a WAL database, or a Redis INCR.
func storeRTT(ctx context.Context, store, redisURL, dir string) (time.Duration, error) {
	const n = 200
	var lat []time.Duration
	switch store {
	case "sqlite":
		db, err := migrate.OpenSQLite(ctx, filepath.Join(dir, "rtt.db"), 5*time.Second)
		if err != nil {
			return 0, err
		}
		defer db.Close()
		if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS rtt (k INTEGER PRIMARY KEY, v INTEGER)`); err != nil {
			return 0, err
		}
		for i := range n {
			t0 := time.Now()
			if _, err := db.ExecContext(ctx, `INSERT INTO rtt (k, v) VALUES (1, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v`, i); err != nil {
				return 0, err
			}
			lat = append(lat, time.Since(t0))
		}
	case "redis":
		opt, err := redis.ParseURL(redisURL)
		if err != nil {
			return 0, fmt.Errorf("-redis: %w", err)
		}
		rdb := redis.NewClient(opt)
		defer rdb.Close()
		key := "loadtest:rtt:" + newRunID()
		for range n {
			t0 := time.Now()
			if err := rdb.Incr(ctx, key).Err(); err != nil {
				return 0, fmt.Errorf("-redis: %w", err)
			}
			lat = append(lat, time.Since(t0))
		}
		rdb.Del(ctx, key)
	}
	slices.Sort(lat)
	return lat[len(lat)/2], nil
}
