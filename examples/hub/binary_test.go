package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var (
	buildOnce sync.Once
	hubBin    string
	buildErr  error
)

// hubBinary builds the hub once per test run and returns its path.
func hubBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "hub-bin-")
		if err != nil {
			buildErr = err
			return
		}
		hubBin = filepath.Join(dir, "hub")
		out, err := exec.Command("go", "build", "-o", hubBin, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	require.NoError(t, buildErr)
	return hubBin
}

// hubProc is a running hub binary.
type hubProc struct {
	cmd    *exec.Cmd
	addr   string
	mu     sync.Mutex
	stderr bytes.Buffer
	done   chan error
}

func (h *hubProc) logs() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.stderr.String()
}

// startHub runs the binary with env (plus HUB_ADDR on a free port) and
// waits until it logs that it listens.
func startHub(t *testing.T, env ...string) *hubProc {
	t.Helper()
	cmd := exec.Command(hubBinary(t))
	cmd.Env = append(os.Environ(), append([]string{"HUB_ADDR=127.0.0.1:0", "REDIS_URL="}, env...)...)
	cmd.Dir = t.TempDir()
	pr, pw := io.Pipe()
	cmd.Stderr = pw
	require.NoError(t, cmd.Start())
	h := &hubProc{cmd: cmd, done: make(chan error, 1)}
	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			h.mu.Lock()
			h.stderr.WriteString(line + "\n")
			h.mu.Unlock()
			var rec struct {
				Msg  string `json:"msg"`
				Addr string `json:"addr"`
			}
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "hub listening" {
				addrc <- rec.Addr
			}
		}
	}()
	go func() { err := cmd.Wait(); _ = pw.Close(); h.done <- err }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-h.done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
		}
	})
	select {
	case h.addr = <-addrc:
	case err := <-h.done:
		h.done <- err
		t.Fatalf("hub exited before listening: %v\n%s", err, h.logs())
	case <-time.After(60 * time.Second):
		t.Fatalf("hub did not start:\n%s", h.logs())
	}
	return h
}

// runHub runs the binary to completion and returns its exit code and output.
func runHub(t *testing.T, dir string, env []string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(hubBinary(t), args...)
	cmd.Env = append(os.Environ(), append([]string{"HUB_ADDR=127.0.0.1:0", "REDIS_URL="}, env...)...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	done := make(chan error, 1)
	require.NoError(t, cmd.Start())
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("hub %v did not exit", args)
	}
	return cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()
}

// hubError returns the last line of a failed hub's stderr, checking that
// it is the one-line "hub: ..." error.
func hubError(t *testing.T, stderr string) string {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	last := lines[len(lines)-1]
	assert.True(t, strings.HasPrefix(last, "hub: "), stderr)
	return last
}

func getJSON(t *testing.T, url, token string) (int, map[string]any) {
	t.Helper()
	resp, b := call(t, "GET", url, token, "")
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return resp.StatusCode, m
}

func TestBinaryTwoProcessesOneDatabase(t *testing.T) {
	db := "DATABASE_URL=sqlite:///" + filepath.Join(t.TempDir(), "shared.db")
	var hubs [2]*hubProc
	var wg sync.WaitGroup
	for i := range hubs {
		wg.Add(1)
		go func() { defer wg.Done(); hubs[i] = startHub(t, db, "HUB_AUTH_SECRET="+testAuthSecret) }()
	}
	wg.Wait()
	for _, h := range hubs {
		code, body := getJSON(t, "http://"+h.addr+"/readyz", "")
		assert.Equal(t, 200, code, "%v\n%s", body, h.logs())
	}
	applied := strings.Count(hubs[0].logs(), `"msg":"migration applied"`) + strings.Count(hubs[1].logs(), `"msg":"migration applied"`)
	assert.Positive(t, applied)
	sq := openTestDB(t, strings.TrimPrefix(db, "DATABASE_URL=sqlite:///"))
	var rows int
	require.NoError(t, sq.Get(&rows, "SELECT count(*) FROM hardening_schema_migrations"))
	assert.Equal(t, rows, applied, "every migration applied by exactly one of the two processes")
	code, out, _ := runHub(t, t.TempDir(), []string{db}, "migrate", "status")
	require.Equal(t, 0, code)
	assert.NotContains(t, out, "pending")
}

func TestBinaryDevSecretAndToken(t *testing.T) {
	dir := t.TempDir()
	db := "DATABASE_URL=sqlite:///" + filepath.Join(dir, "hub.db")
	h := startHub(t, db, "HUB_AUTH_SECRET=")
	assert.Contains(t, h.logs(), "HUB_AUTH_SECRET is unset")
	code, tok, stderr := runHub(t, dir, []string{db, "HUB_AUTH_SECRET="}, "token", "-sub", "alice", "-tenant", "acme", "-admin")
	require.Equal(t, 0, code, stderr)
	status, body := getJSON(t, "http://"+h.addr+"/api/v1/whoami", strings.TrimSpace(tok))
	require.Equal(t, 200, status, "%v", body)
	assert.Equal(t, "alice", body["user_id"])
	assert.Equal(t, "acme", body["tenant_id"])
	assert.Equal(t, []any{"admin"}, body["roles"])

	status, _ = getJSON(t, "http://"+h.addr+"/api/v1/whoami", "")
	assert.Equal(t, 401, status)
}

func TestBinaryStrictRefusesUnknownMigration(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "hub.db")
	db := "DATABASE_URL=sqlite:///" + path
	code, _, stderr := runHub(t, dir, []string{db}, "migrate", "up")
	require.Equal(t, 0, code, stderr)
	sq := openTestDB(t, path)
	_, err := sq.Exec(`INSERT INTO hardening_schema_migrations (set_name, version, name, checksum, applied_at) VALUES ('kit', 999, 'from_the_future', 'x', '2030-01-01T00:00:00Z')`)
	require.NoError(t, err)
	require.NoError(t, sq.Close())

	code, _, stderr = runHub(t, dir, []string{db, "STRICT_DB_STARTUP=true", "HUB_AUTH_SECRET=" + testAuthSecret})
	assert.Equal(t, 1, code)
	assert.Equal(t, 1, strings.Count(strings.TrimSpace(stderr), "\n")+1, "one error line:\n%s", stderr)
	assert.Contains(t, stderr, "schema_ahead")
	assert.Contains(t, stderr, "0999_from_the_future")
	assert.Contains(t, stderr, "deploy the newer binary")
	assert.NotContains(t, stderr, "panic")

	// Lenient: starts degraded and /readyz says why.
	h := startHub(t, db, "STRICT_DB_STARTUP=false", "HUB_AUTH_SECRET="+testAuthSecret)
	status, body := getJSON(t, "http://"+h.addr+"/readyz", "")
	assert.Equal(t, 503, status)
	assert.Equal(t, "schema_ahead", body["reason"])
	assert.Contains(t, h.logs(), `"level":"WARN"`)
	status, _ = getJSON(t, "http://"+h.addr+"/livez", "")
	assert.Equal(t, 200, status)
}

func TestBinaryStartupErrors(t *testing.T) {
	dir := t.TempDir()
	corrupt := filepath.Join(dir, "corrupt.db")
	require.NoError(t, os.WriteFile(corrupt, bytes.Repeat([]byte("not a database "), 100), 0o600))
	tests := []struct {
		name string
		env  []string
		want string
	}{
		{"bad url", []string{"DATABASE_URL=mysql://localhost/hub"}, "DATABASE_URL"},
		{"unwritable path", []string{"DATABASE_URL=sqlite:///" + filepath.Join(dir, "missing", "dir", "hub.db")}, "DATABASE_URL"},
		{"corrupt file", []string{"DATABASE_URL=sqlite:///" + corrupt}, "DATABASE_URL"},
		{"bad strict value", []string{"STRICT_DB_STARTUP=maybe"}, "STRICT_DB_STARTUP"},
		{"short secret", []string{"HUB_AUTH_SECRET=short"}, "HUB_AUTH_SECRET"},
		{"redis down", []string{"REDIS_URL=redis://127.0.0.1:1"}, "REDIS_URL"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runHub(t, t.TempDir(), tc.env)
			assert.Equal(t, 1, code, stderr)
			assert.Contains(t, hubError(t, stderr), tc.want)
			assert.NotContains(t, stderr, "panic")
			assert.NotContains(t, stderr, "goroutine ")
		})
	}
}

func TestBinaryGracefulShutdown(t *testing.T) {
	h := startHub(t, "DATABASE_URL=sqlite:///"+filepath.Join(t.TempDir(), "hub.db"), "HUB_AUTH_SECRET="+testAuthSecret)
	resp, err := http.Get("http://" + h.addr + "/livez")
	require.NoError(t, err)
	resp.Body.Close()
	require.NoError(t, h.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-h.done:
		h.done <- err
		assert.NoError(t, err, h.logs())
		assert.Contains(t, h.logs(), "shutting down")
	case <-time.After(20 * time.Second):
		t.Fatal("hub did not stop on SIGTERM")
	}
}

func TestBinaryMigrateCommands(t *testing.T) {
	dir := t.TempDir()
	db := "DATABASE_URL=sqlite:///" + filepath.Join(dir, "hub.db")
	code, out, stderr := runHub(t, dir, []string{db}, "migrate", "status")
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, out, "pending")
	assert.Contains(t, out, "go run ./examples/hub migrate up")
	code, out, _ = runHub(t, dir, []string{db}, "migrate", "up")
	require.Equal(t, 0, code)
	assert.Contains(t, out, "applied kit/0001")
	assert.Contains(t, out, "applied hub/0001")
	code, out, _ = runHub(t, dir, []string{db}, "migrate", "up")
	require.Equal(t, 0, code)
	assert.Contains(t, out, "nothing to apply")
	code, _, stderr = runHub(t, dir, []string{db}, "migrate", "sideways")
	assert.Equal(t, 2, code, "a usage error exits 2, like the flag package")
	assert.Contains(t, stderr, "usage")
}

// TestBinaryConfigErrorsWriteNothing: a bad value in any variable the hub
// reads is reported, naming it, before the database file is created (and,
// but for REDIS_URL itself, before Redis is contacted: the one given here
// is down).
func TestBinaryConfigErrorsWriteNothing(t *testing.T) {
	for _, kv := range []string{
		"PREVIEW_TOKEN_TTL=forever",
		"PREVIEW_KEY_ROTATION=daily",
		"DEFAULT_ACTIVE_PREVIEWS_LIMIT=many",
		"DEFAULT_LLM_MONTHLY_BUDGET_USD=lots",
		"IDEMPOTENCY_TTL=soon",
		"IDEMPOTENCY_LOCK_TIMEOUT=-1s",
		"STREAMAUTH_KEEPALIVE=often",
		"STREAMAUTH_MAX_STREAMS_PER_USER=-1",
		"STREAMAUTH_MAX_STREAMS_PER_TENANT=many",
		"FLAGS_POLL_INTERVAL=often",
		"FLAGS_MAX_STALENESS=0",
		"HUB_STREAM_HEARTBEAT=0s",
		"HUB_PREVIEW_LEASE=long",
		"HUB_STUB_MODEL_DELAY=-1s",
		"PREVIEW_EGRESS_ALLOWLIST=0x7f.1",
		"PREVIEW_CPU_LIMIT=all",
		"HUB_MAX_CONNS=0",
		"HUB_BODY_TIMEOUT=slow",
		"HUB_WRITE_TIMEOUT=-1s",
		"REDIS_URL=redis://127.0.0.1:1",
		"MIGRATIONS_AUTO_APPLY=perhaps",
		"MIGRATIONS_CHECK_ON_STARTUP=sometimes",
		"ALEMBIC_CHECK_ON_STARTUP=sometimes",
		"STRICT_DB_STARTUP=maybe",
		"HUB_REDIS_PREFIX=hub:{a}:",
	} {
		name, _, _ := strings.Cut(kv, "=")
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			code, _, stderr := runHub(t, dir, []string{"DATABASE_URL=sqlite:///" + filepath.Join(dir, "hub.db"), "REDIS_URL=redis://127.0.0.1:1", kv})
			assert.Equal(t, 1, code, stderr)
			assert.Contains(t, hubError(t, stderr), name)
			files, err := os.ReadDir(dir)
			require.NoError(t, err)
			assert.Empty(t, files, "written before the configuration was checked")
		})
	}
}

// checkSchemaPending checks a hub that waits for its schema: /readyz and
// the API 503 schema_pending, /livez 200.
func checkSchemaPending(t *testing.T, base string) {
	t.Helper()
	for _, p := range []string{"/readyz", "/api/v1/whoami", "/api/v1/feature-flags"} {
		status, body := getJSON(t, base+p, "")
		assert.Equal(t, 503, status, "%s: %v", p, body)
		assert.Equal(t, "schema_pending", body["reason"], p)
	}
	status, _ := getJSON(t, base+"/livez", "")
	assert.Equal(t, 200, status)
}

// TestBinaryLenientFreshDatabase is docs/migrate.md's promise: with
// MIGRATIONS_AUTO_APPLY=false on an empty path, the hub starts degraded
// (/readyz and the API 503 schema_pending), and becomes ready, with its
// development secret, once `hub migrate up` has run; no restart. The
// database files are private (mode 0600).
func TestBinaryLenientFreshDatabase(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "hub.db")
	env := []string{"DATABASE_URL=sqlite:///" + path, "HUB_AUTH_SECRET=", "MIGRATIONS_AUTO_APPLY=false"}
	h := startHub(t, env...)
	base := "http://" + h.addr
	checkSchemaPending(t, base)
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), p)
	}

	code, out, stderr := runHub(t, dir, env, "migrate", "up")
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, out, "applied hub/0001")
	eventually(t, 15*time.Second, "the hub to become ready", func() (bool, string) {
		status, body := getJSON(t, base+"/readyz", "")
		return status == 200, fmt.Sprint(status, body, h.logs())
	})
	code, tok, stderr := runHub(t, dir, env, "token", "-sub", "alice", "-tenant", "acme")
	require.Equal(t, 0, code, stderr)
	status, body := getJSON(t, base+"/api/v1/whoami", strings.TrimSpace(tok))
	assert.Equal(t, 200, status, "%v", body)
	assert.Contains(t, h.logs(), "database schema applied")
}

// TestBinaryDevSecretFileMode: without HUB_AUTH_SECRET the database holds
// the signing secret, so the hub (and `hub token`) refuse a database file
// other users may read, saying how to fix it; with HUB_AUTH_SECRET, or
// once the file is 0600, the hub starts.
func TestBinaryDevSecretFileMode(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "hub.db")
	db := "DATABASE_URL=sqlite:///" + path
	code, _, stderr := runHub(t, dir, []string{db}, "migrate", "up")
	require.Equal(t, 0, code, stderr)
	fi, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "a new database is private")

	require.NoError(t, os.Chmod(path, 0o644))
	for _, args := range [][]string{nil, {"token", "-sub", "alice", "-tenant", "acme"}} {
		code, out, stderr := runHub(t, dir, []string{db, "HUB_AUTH_SECRET="}, args...)
		assert.Equal(t, 1, code, "%v: %s", args, stderr)
		assert.Empty(t, out)
		last := hubError(t, stderr)
		assert.Contains(t, last, "chmod 600 "+path)
		assert.Contains(t, last, "HUB_AUTH_SECRET")
		assert.Contains(t, last, "0644")
	}
	startHub(t, db, "HUB_AUTH_SECRET="+testAuthSecret) // still running: its -wal and -shm are 0644 too

	code, _, stderr = runHub(t, dir, []string{db, "HUB_AUTH_SECRET="})
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, fmt.Sprintf("chmod 600 %s %s-wal %s-shm`", path, path, path), "the fix names every file")
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		require.NoError(t, os.Chmod(p, 0o600))
	}
	h := startHub(t, db, "HUB_AUTH_SECRET=")
	assert.Contains(t, h.logs(), "HUB_AUTH_SECRET is unset")
}

// TestBinaryPortInUse: a taken HUB_ADDR is the first and only thing the hub
// says; it creates no database and logs nothing before it.
func TestBinaryPortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	dir := t.TempDir()
	code, _, stderr := runHub(t, dir, []string{"HUB_ADDR=" + ln.Addr().String(), "DATABASE_URL=sqlite:///" + filepath.Join(dir, "hub.db")})
	assert.Equal(t, 1, code)
	assert.Equal(t, "hub: HUB_ADDR="+ln.Addr().String()+": listen tcp "+ln.Addr().String()+": bind: address already in use\n", stderr)
	assert.NoFileExists(t, filepath.Join(dir, "hub.db"))
}

// TestBinaryCleanShutdown: SIGTERM drains and exits 0, and nothing from
// start to exit is logged above INFO or outside JSON.
func TestBinaryCleanShutdown(t *testing.T) {
	h := startHub(t, "HUB_AUTH_SECRET="+testAuthSecret, "DATABASE_URL=sqlite:///"+filepath.Join(t.TempDir(), "hub.db"))
	resp, err := http.Get("http://" + h.addr + "/readyz")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.NoError(t, h.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-h.done:
		h.done <- err
		require.NoError(t, err, h.logs())
	case <-time.After(20 * time.Second):
		t.Fatalf("no exit 20 s after SIGTERM:\n%s", h.logs())
	}
	for line := range strings.SplitSeq(strings.TrimSpace(h.logs()), "\n") {
		var rec struct{ Level string }
		require.NoError(t, json.Unmarshal([]byte(line), &rec), "not JSON: %q", line)
		assert.Equal(t, "INFO", rec.Level, "a normal start and shutdown logged %q", line)
	}
	assert.Contains(t, h.logs(), "shutting down")
}
