package main

// Fault injection against the hub binary: Redis stopped and restarted
// under load, a hub process SIGKILLed in the middle of a request, the
// SQLite file locked by another process for longer than busy_timeout.
// (Disk full is in faults_linux_test.go.) See docs/reliability.md.

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// faultRedis is a Redis server the test stops and starts again on the same
// address: a redis-server child process when one is on PATH (append-only
// file fsynced on every write, so a SIGKILL loses nothing acknowledged),
// else miniredis (Close and Restart keep the data). HUB_FAULT_REDIS=miniredis
// forces miniredis.
type faultRedis struct {
	kind  string
	addr  string
	stop  func()
	start func()
}

func newFaultRedis(t *testing.T) *faultRedis {
	t.Helper()
	if bin, err := exec.LookPath("redis-server"); err == nil && os.Getenv("HUB_FAULT_REDIS") != "miniredis" {
		dir := t.TempDir()
		port := freePort(t)
		fr := &faultRedis{kind: "redis-server", addr: "127.0.0.1:" + port}
		var mu sync.Mutex
		var cmd *exec.Cmd
		var done chan struct{}
		fr.start = func() {
			mu.Lock()
			defer mu.Unlock()
			cmd = exec.Command(bin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes",
				"--appendfsync", "always", "--dir", dir, "--loglevel", "warning")
			require.NoError(t, cmd.Start())
			done = make(chan struct{})
			go func(c *exec.Cmd, d chan struct{}) { _ = c.Wait(); close(d) }(cmd, done)
			waitRedis(t, fr.addr)
		}
		fr.stop = func() {
			mu.Lock()
			defer mu.Unlock()
			if cmd == nil {
				return
			}
			_ = cmd.Process.Kill()
			<-done
			cmd = nil
		}
		fr.start()
		t.Cleanup(fr.stop)
		return fr
	}
	mr := miniredis.NewMiniRedis()
	require.NoError(t, mr.Start())
	t.Cleanup(mr.Close)
	return &faultRedis{
		kind:  "miniredis",
		addr:  mr.Addr(),
		stop:  mr.Close,
		start: func() { require.NoError(t, mr.Restart()) },
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

// waitRedis waits until the server at addr answers PING.
func waitRedis(t *testing.T, addr string) {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return
		}
		require.True(t, time.Now().Before(deadline), "redis at %s does not answer: %v", addr, err)
		time.Sleep(20 * time.Millisecond)
	}
}

// killHub SIGKILLs a hub process and waits until it is gone.
func killHub(t *testing.T, h *hubProc) {
	t.Helper()
	require.NoError(t, h.cmd.Process.Kill())
	select {
	case err := <-h.done:
		h.done <- err
	case <-time.After(10 * time.Second):
		t.Fatal("killed hub did not exit")
	}
}

// eventually retries fn every 50ms until it returns true or bound passes.
func eventually(t *testing.T, bound time.Duration, what string, fn func() (bool, string)) time.Duration {
	t.Helper()
	start := time.Now()
	last := ""
	for time.Since(start) < bound {
		ok, msg := fn()
		if ok {
			return time.Since(start)
		}
		last = msg
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: not within %s; last answer: %s", what, bound, last)
	return 0
}

// isProblem503 reports whether r is a 503 problem+json with reason.
func isProblem503(r result, reason string) bool {
	return r.err == nil && r.status == 503 && r.header.Get("Content-Type") == "application/problem+json" && r.str("reason") == reason
}

func TestFaultRedisOutage(t *testing.T) {
	t.Parallel()
	fr := newFaultRedis(t)
	t.Logf("controllable redis: %s on %s", fr.kind, fr.addr)
	dir := t.TempDir()
	env := []string{"HUB_AUTH_SECRET=" + testAuthSecret, "REDIS_URL=redis://" + fr.addr, "HUB_REDIS_PREFIX=fault-" + randHex(4) + ":"}
	hubs := make([]*hubProc, 2)
	for i := range hubs {
		hubs[i] = startHub(t, append(slices.Clone(env), fmt.Sprintf("DATABASE_URL=sqlite:///%s/hub%d.db", dir, i))...)
	}
	o := startOutage(t, hubs)

	fr.stop()
	down := time.Now()
	for i := range hubs {
		o.checkDown(i, "redis", "redis_unavailable")
	}
	time.Sleep(500 * time.Millisecond)

	fr.start()
	up := time.Now()
	for i := range hubs {
		took := o.checkUp(i)
		t.Logf("hub %d: writes recovered %s after redis came back (outage %s)", i, took.Round(time.Millisecond), up.Sub(down).Round(time.Millisecond))
	}
	time.Sleep(500 * time.Millisecond)
	locked, executions := o.finish()
	t.Logf("redis outage (%s): %s", fr.kind, o.summary(locked, executions))
}

func TestFaultHubKilled(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"sqlite", "redis", "postgres"} {
		t.Run(mode, func(t *testing.T) { runHubKilled(t, mode) })
	}
}

// runHubKilled SIGKILLs hub A in the middle of a slow LLM completion
// (HUB_STUB_MODEL_DELAY) while it holds preview slots and a live stream,
// then checks what hub B sees.
func runHubKilled(t *testing.T, mode string) {
	// The slot lease outlasts A's run (held past the lock timeout) and the
	// key's lapse after the kill, so B sees the slots still held.
	const lockTimeout, lease = 3 * time.Second, 9 * time.Second
	env := []string{
		"HUB_AUTH_SECRET=" + testAuthSecret,
		"DATABASE_URL=sqlite:///" + filepath.Join(t.TempDir(), "shared.db"),
		"IDEMPOTENCY_LOCK_TIMEOUT=" + lockTimeout.String(),
		"HUB_PREVIEW_LEASE=" + lease.String(),
		"DEFAULT_ACTIVE_PREVIEWS_LIMIT=2",
	}
	if mode == "redis" {
		srv := testRedis(t)
		env = append(env, "REDIS_URL="+srv.URL, "HUB_REDIS_PREFIX="+srv.Prefix)
	}
	if mode == "postgres" {
		env = append(env, "DATABASE_URL="+testPostgres(t).URL) // the last value wins
	}
	a := startHub(t, append(slices.Clone(env), "HUB_STUB_MODEL_DELAY=1m")...)
	b := startHub(t, env...)
	urlA := func(p string) string { return "http://" + a.addr + p }
	urlB := func(p string) string { return "http://" + b.addr + p }
	tenant := "kill-" + randHex(4)
	tok := testToken(t, "u1", tenant, false)
	c := newHubClient(t)
	bg := context.Background()

	// A holds both preview slots; B sees the shared limit.
	// Leases start after these instants, so "not before instant + lease"
	// holds whatever the scheduling delays.
	beforeSlots := time.Now()
	for range 2 {
		r := c.do(bg, "POST", urlA("/api/v1/previews"), tok, `{"system_id":"s"}`)
		require.Equal(t, 201, r.status, "%v", r)
	}
	r := c.do(bg, "POST", urlB("/api/v1/previews"), tok, `{"system_id":"s"}`)
	require.Equal(t, 429, r.status, "%v", r)

	// A live stream on A, and a completion in flight on A.
	streamCtx, stopStream := context.WithCancel(bg)
	defer stopStream()
	stream := openSSE(t, streamCtx, c, a.addr, tok)
	const body = `{"prompt":"hello","max_cost_usd":0.01}`
	beforeClaim := time.Now()
	inflight := make(chan result, 1)
	go func() {
		inflight <- c.do(bg, "POST", urlA("/api/v1/llm/completions"), tok, body, "Idempotency-Key", "llm-1")
	}()
	// A has claimed the key once its handler reserved the budget.
	eventually(t, 10*time.Second, "A's completion reserved its budget", func() (bool, string) {
		code, q := getJSON(t, urlB("/api/v1/tenancy/quotas/"+tenant), tok)
		usage, _ := q["usage"].(map[string]any)
		return code == 200 && usage["llm_reserved_usd"] == llmPrice(len("hello")).USD(), fmt.Sprint(q)
	})
	eventually(t, 10*time.Second, "B sees A's request in flight", func() (bool, string) {
		r := c.do(bg, "POST", urlB("/api/v1/llm/completions"), tok, body, "Idempotency-Key", "llm-1")
		return r.status == 409 && r.str("reason") == "idempotency_key_in_flight", r.String()
	})
	// A renews its lease while the completion runs: B's retries stay 409
	// past the lock timeout, and nothing is charged twice.
	for held := time.Now(); time.Since(held) < lockTimeout+time.Second; time.Sleep(100 * time.Millisecond) {
		r := c.do(bg, "POST", urlB("/api/v1/llm/completions"), tok, body, "Idempotency-Key", "llm-1")
		require.True(t, r.status == 409 && r.str("reason") == "idempotency_key_in_flight",
			"a retry on B %s after A's claim, while A still runs: %v", time.Since(beforeClaim).Round(time.Millisecond), r)
	}

	killHub(t, a)
	killed := time.Now()
	select {
	case r := <-inflight:
		assert.Error(t, r.err, "the in-flight completion's connection must break: %v", r)
	case <-time.After(10 * time.Second):
		t.Fatal("the in-flight completion did not end when its hub died")
	}
	select {
	case <-stream.done:
		t.Logf("stream on the killed hub ended: %v", stream.err)
	case <-time.After(10 * time.Second):
		t.Fatal("the stream on the killed hub stayed open")
	}

	// The lease of A's request expires; the retry on B runs it once.
	var done result
	took := eventually(t, 15*time.Second, "retry on B after the lease expires", func() (bool, string) {
		done = c.do(bg, "POST", urlB("/api/v1/llm/completions"), tok, body, "Idempotency-Key", "llm-1")
		if done.status != 409 {
			return true, ""
		}
		return false, done.String()
	})
	require.Equal(t, 200, done.status, "%v", done)
	assert.False(t, done.replay())
	// A's last renewal was at most one renewal interval (lockTimeout/3)
	// before the kill; its lease ran one lock timeout from there.
	assert.GreaterOrEqual(t, time.Since(killed), lockTimeout-lockTimeout/3, "the key was locked until A's last lease ended")
	again := c.do(bg, "POST", urlB("/api/v1/llm/completions"), tok, body, "Idempotency-Key", "llm-1")
	assert.True(t, again.replay(), "%v", again)
	assert.Equal(t, string(done.body), string(again.body))

	// A's preview slots free when their leases end.
	slotTook := eventually(t, 15*time.Second, "preview on B after A's slot leases end", func() (bool, string) {
		r := c.do(bg, "POST", urlB("/api/v1/previews"), tok, `{"system_id":"s"}`)
		if r.status == 429 {
			return false, r.String()
		}
		require.Equal(t, 201, r.status, "%v", r)
		return true, ""
	})
	assert.GreaterOrEqual(t, time.Since(beforeSlots), lease, "slots were held until their lease ended")

	// Streams reconnect to B.
	streamB := openSSE(t, streamCtx, c, b.addr, tok)
	defer func() { stopStream(); <-streamB.done }()

	code, q := getJSON(t, urlB("/api/v1/tenancy/quotas/"+tenant), tok)
	require.Equal(t, 200, code, "%v", q)
	usage := q["usage"].(map[string]any)
	cost, _ := done.json()["cost_usd"].(float64)
	assert.Equal(t, usd2micros(cost), usd2micros(usage["llm_spent_usd"].(float64)), "spent = the one completed call")
	t.Logf("%s: hub killed mid-completion; idempotency key free after %s more, preview slots after %s more; A's unsettled reservation $%v stays reserved until its TTL (10m)",
		mode, took.Round(time.Millisecond), slotTook.Round(time.Millisecond), usage["llm_reserved_usd"])
}

func TestFaultSQLiteLocked(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "hub.db")
	h := startHub(t, "HUB_AUTH_SECRET="+testAuthSecret, "DATABASE_URL=sqlite:///"+path)
	url := func(p string) string { return "http://" + h.addr + p }
	tenant := "lock-" + randHex(4)
	tok := testToken(t, "u1", tenant, false)
	admin := testToken(t, "root", tenant, true)
	c := newHubClient(t)
	bg := context.Background()
	r := c.do(bg, "POST", url("/api/v1/previews"), tok, `{"system_id":"s"}`)
	require.Equal(t, 201, r.status, "%v", r)
	preview := r.str("preview_id")

	// Another process's connection holds the write lock past busy_timeout (5s).
	db := openTestDB(t, path)
	conn, err := db.Conn(bg)
	require.NoError(t, err)
	defer conn.Close()
	_, err = conn.ExecContext(bg, "BEGIN EXCLUSIVE")
	require.NoError(t, err)
	locked := time.Now()

	type probe struct {
		method, path, token, body, key, reason string
	}
	probes := []probe{
		{"POST", "/api/v1/echo", tok, `{"n":1}`, "lock-1", "idempotency_store_unavailable"},
		{"POST", "/api/v1/previews", tok, `{"system_id":"s"}`, "", "quota_store_unavailable"},
		{"DELETE", "/api/v1/previews/" + preview, tok, "", "", "db_unavailable"},
		{"POST", "/api/v1/llm/completions", tok, `{"prompt":"p","max_cost_usd":0.01}`, "", "quota_store_unavailable"},
		{"POST", "/api/v1/feature-flags/llm.streaming/toggle", admin, `{"enabled":true,"tenant_id":"` + tenant + `"}`, "", "flags_unavailable"},
	}
	send := func(p probe) result {
		var hdr []string
		if p.key != "" {
			hdr = []string{"Idempotency-Key", p.key}
		}
		return c.do(bg, p.method, url(p.path), p.token, p.body, hdr...)
	}
	results := make([]result, len(probes))
	var wg sync.WaitGroup
	for i, p := range probes {
		wg.Go(func() { results[i] = send(p) })
	}
	// Reads do not need the write lock (WAL).
	r = c.do(bg, "GET", url("/api/v1/whoami"), tok, "")
	assert.Equal(t, 200, r.status, "%v", r)
	wg.Wait()
	held := time.Since(locked)
	_, err = conn.ExecContext(bg, "ROLLBACK")
	require.NoError(t, err)
	for i, p := range probes {
		assert.True(t, isProblem503(results[i], p.reason), "%s %s while locked: want 503 %s, got %v", p.method, p.path, p.reason, results[i])
		if p.reason != "flags_unavailable" { // the flags handler sends no Retry-After
			assert.NotEmpty(t, results[i].header.Get("Retry-After"), "%s %s", p.method, p.path)
		}
	}

	// Released: the same requests succeed, nothing was half-written.
	want := []int{201, 201, 204, 200, 200}
	for i, p := range probes {
		r := send(p)
		assert.Equal(t, want[i], r.status, "%s %s after release: %v", p.method, p.path, r)
		assert.False(t, r.replay())
	}
	var check string
	require.NoError(t, db.Get(&check, "PRAGMA integrity_check"))
	assert.Equal(t, "ok", check)
	assert.NotContains(t, h.logs(), "panic")
	t.Logf("sqlite locked %s (busy_timeout 5s): %d writes answered 503 with Retry-After, then succeeded; integrity_check %s",
		held.Round(time.Millisecond), len(probes), check)
}

// assertJSONLines fails t for every line of logs that is not a JSON object:
// the hub's logs, go-redis's included, stay JSON through an outage.
func assertJSONLines(t *testing.T, who, logs string) {
	t.Helper()
	for line := range strings.SplitSeq(strings.TrimSpace(logs), "\n") {
		var v map[string]any
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Errorf("%s logged a line that is not JSON: %q", who, line)
		}
	}
}
