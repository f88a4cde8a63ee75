package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// walkthroughPath is the document TestWalkthrough runs.
const walkthroughPath = "../../docs/walkthrough.md"

// TestWalkthrough follows docs/walkthrough.md literally against fresh hubs
// built from this tree, as its last section describes: the console blocks
// run in one bash session, the Redis blocks in another (with REDIS_URL
// only), and every command's output, masked, must be what the page shows.
func TestWalkthrough(t *testing.T) {
	for _, tool := range []string{"bash", "curl", "jq"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("the walkthrough needs %s on PATH: %v", tool, err)
			}
			t.Skipf("the walkthrough needs %s on PATH: %v", tool, err)
		}
	}
	raw, err := os.ReadFile(walkthroughPath)
	require.NoError(t, err)
	doc, err := parseWalkthrough(string(raw))
	require.NoError(t, err, walkthroughPath)
	require.True(t, doc.HasServer, "%s: no %q block starts the hub", walkthroughPath, wtServer)
	require.NotEmpty(t, doc.Sessions[wtConsole], "%s: no %q block", walkthroughPath, wtConsole)
	require.NotEmpty(t, doc.Sessions[wtRedis], "%s: no %q block", walkthroughPath, wtRedis)
	bin := hubBinary(t)

	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		w := newWalk(t, bin, string(raw))
		w.startServer(doc.Server)
		w.run(doc.Sessions[wtConsole])
	})
	t.Run("redis", func(t *testing.T) {
		t.Parallel()
		url := os.Getenv("REDIS_URL")
		if url == "" {
			t.Skipf("the %q blocks of %s need a Redis server: set REDIS_URL (CI does)", wtRedis, walkthroughPath)
		}
		rs := testRedis(t) // its cleanup deletes the keys under rs.Prefix
		w := newWalk(t, bin, string(raw), "HUB_REDIS_PREFIX="+rs.Prefix)
		w.replace("redis://127.0.0.1:6379/0", url)
		w.run(doc.Sessions[wtRedis])
	})
}

// walk is one session of the walkthrough: its environment, its scratch
// directories and the rewrites of the document's commands.
type walk struct {
	t       *testing.T
	scratch string // stands for /tmp/walkthrough
	work    string // the working directory of every command
	env     []string
	olds    []string // what the commands say, in the order of news
	news    []string // what the test runs instead
	mu      sync.Mutex
	server  bytes.Buffer // shell 1's output
}

// wtDocAddr matches the loopback addresses the document's commands use.
var wtDocAddr = regexp.MustCompile(`127\.0\.0\.1:80\d\d`)

func newWalk(t *testing.T, bin, doc string, env ...string) *walk {
	w := &walk{t: t, scratch: t.TempDir(), work: t.TempDir(), env: append(hubFreeEnv(), env...)}
	w.replace("go run ./examples/hub", bin)
	w.replace("/tmp/walkthrough", w.scratch)
	seen := map[string]bool{}
	for _, a := range wtDocAddr.FindAllString(doc, -1) {
		if !seen[a] {
			seen[a] = true
			w.replace(a, freeLoopbackAddr(t))
		}
	}
	t.Cleanup(func() {
		if t.Failed() {
			w.dumpLogs()
		}
	})
	return w
}

// replace makes the commands run new where the document says old; a
// second call for old replaces the first.
func (w *walk) replace(old, new string) {
	for i, o := range w.olds {
		if o == old {
			w.news[i] = new
			return
		}
	}
	w.olds, w.news = append(w.olds, old), append(w.news, new)
}

// command returns the document's text as the test runs it.
func (w *walk) command(s string) string {
	pairs := make([]string, 0, 2*len(w.olds))
	for i := range w.olds {
		pairs = append(pairs, w.olds[i], w.news[i])
	}
	return strings.NewReplacer(pairs...).Replace(s)
}

// output returns a command's output in the document's terms (its paths
// and addresses put back).
func (w *walk) output(s string) string {
	pairs := make([]string, 0, 2*len(w.olds))
	for i := range w.olds {
		pairs = append(pairs, w.news[i], w.olds[i])
	}
	return strings.NewReplacer(pairs...).Replace(s)
}

// hubFreeEnv is the test's environment without the variables the hub
// reads, so that only the document configures the hubs.
func hubFreeEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch {
		case name == "DATABASE_URL", name == "REDIS_URL", name == "H", name == "A", name == "B",
			strings.HasPrefix(name, "HUB_"), strings.HasPrefix(name, "PREVIEW_"), strings.HasPrefix(name, "DEFAULT_"),
			strings.HasPrefix(name, "IDEMPOTENCY_"), strings.HasPrefix(name, "MIGRATIONS_"), strings.HasPrefix(name, "ALEMBIC_"),
			strings.HasPrefix(name, "STRICT_DB_"), strings.HasPrefix(name, "STREAMAUTH_"), strings.HasPrefix(name, "FLAGS_"):
			continue
		}
		env = append(env, kv)
	}
	return env
}

func freeLoopbackAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

// startServer runs shell 1's block in the background with HUB_ADDR on a
// free port, waits until its hub listens, and points 127.0.0.1:8080 at it.
// The hub is stopped at cleanup.
func (w *walk) startServer(block string) {
	t := w.t
	cmd := exec.Command("bash", "-c", w.command(block))
	cmd.Dir, cmd.Env = w.work, append(w.env, "HUB_ADDR=127.0.0.1:0")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	cmd.Stdout = &lockedWriter{mu: &w.mu, w: &w.server}
	require.NoError(t, cmd.Start())
	addrc := make(chan string, 1)
	done := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			w.mu.Lock()
			w.server.WriteString(sc.Text() + "\n")
			w.mu.Unlock()
			var rec struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Msg == "hub listening" {
				addrc <- rec.Addr
			}
		}
		_ = cmd.Wait()
		close(done)
	}()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	})
	select {
	case addr := <-addrc:
		w.replace("127.0.0.1:8080", addr)
	case <-done:
		t.Fatalf("shell 1's hub exited before listening")
	case <-time.After(60 * time.Second):
		t.Fatalf("shell 1's hub did not listen within 60 s")
	}
}

// wtMarker separates the outputs of the session's commands.
const wtMarker = "@@walkthrough-command "

// run runs cmds in one bash session and compares each one's output with
// the document's.
func (w *walk) run(cmds []wtCommand) {
	t := w.t
	var script strings.Builder
	script.WriteString("exec 2>&1\n")
	for i, c := range cmds {
		fmt.Fprintf(&script, "printf '\\n%s%d@@\\n'\n%s\n", wtMarker, i, w.command(c.Text))
	}
	fmt.Fprintf(&script, "printf '\\n%send@@\\n'\n", wtMarker)

	// A liveness bound: the session takes about 25 s.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", script.String())
	cmd.Dir, cmd.Env = w.work, w.env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var out bytes.Buffer
	cmd.Stdout = &out
	require.NoError(t, cmd.Start())
	err := cmd.Wait()
	stopGroup(cmd.Process.Pid)

	outputs := strings.Split(out.String(), "\n"+wtMarker)
	if len(outputs) < 2 || !strings.HasPrefix(outputs[len(outputs)-1], "end@@") {
		n := len(outputs) - 2
		if n >= 0 && n < len(cmds) {
			t.Errorf("%s:%d: the session stopped (%v) in:\n$ %s\n%s", walkthroughPath, cmds[n].Line, err, cmds[n].Text, w.output(out.String()))
		} else {
			t.Errorf("the session stopped (%v):\n%s", err, w.output(out.String()))
		}
	}
	for i, c := range cmds {
		if i+1 >= len(outputs) {
			break
		}
		_, got, _ := strings.Cut(outputs[i+1], "@@\n")
		got = w.output(got)
		want := maskOutput(strings.Join(c.Want, "\n"))
		if !outputMatches(want, maskOutput(got)) {
			t.Errorf("%s:%d: the output of\n$ %s\ndrifted from the document.\n--- document (masked)\n%s\n--- now (masked)\n%s\n--- now\n%s",
				walkthroughPath, c.Line, c.Text, want, maskOutput(got), strings.TrimRight(got, "\n"))
		}
	}
}

// stopGroup ends what is left of a session's process group (background
// jobs the document did not stop), SIGTERM first.
func stopGroup(pgid int) {
	if syscall.Kill(-pgid, syscall.SIGTERM) != nil {
		return
	}
	for range 50 {
		time.Sleep(100 * time.Millisecond)
		if errors.Is(syscall.Kill(-pgid, 0), syscall.ESRCH) {
			return
		}
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
}

// dumpLogs logs shell 1's output and the tail of every log file in the
// scratch directory, for a failed walkthrough.
func (w *walk) dumpLogs() {
	w.mu.Lock()
	if w.server.Len() > 0 {
		w.t.Logf("shell 1:\n%s", tail(w.server.String(), 40))
	}
	w.mu.Unlock()
	logs, _ := filepath.Glob(filepath.Join(w.scratch, "*.log"))
	for _, f := range logs {
		b, _ := os.ReadFile(f)
		w.t.Logf("%s:\n%s", filepath.Base(f), tail(string(b), 40))
	}
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{"… " + strconv.Itoa(len(lines)-n) + " lines"}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

// lockedWriter writes to w under mu.
type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
