package storetest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening/idempotency"
)

// HelperEnv switches a re-executed test binary into a helper process; its
// value is the mode ("load" or "crash").
const HelperEnv = "HARDENING_IDEMPOTENCY_STORETEST_HELPER"

// Cross-process load shape: every process sends Requests requests spread
// evenly over Keys keys.
const (
	Procs    = 4
	Requests = 500
	Keys     = 50
	workers  = 8
)

// Backend is a store opened in a helper process, with a shared place to
// count handler executions (a side table, a Redis counter).
type Backend struct {
	Store idempotency.Store
	// Executed records that the handler ran for key.
	Executed func(ctx context.Context, key string) error
	// Close releases the backend; may be nil.
	Close func()
}

// MaybeHelperProcess turns the current process into a helper when HelperEnv
// is set: it opens the backend with open (reading its location from the
// environment the parent passed), serves the mode's requests, and exits.
// Call it first in TestMain. Without HelperEnv it returns at once.
func MaybeHelperProcess(open func() (Backend, error)) {
	mode := os.Getenv(HelperEnv)
	if mode == "" {
		return
	}
	b, err := open()
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper: open backend:", err)
		os.Exit(2)
	}
	switch mode {
	case "load":
		err = helperLoad(b)
	case "crash":
		err = helperCrash(b)
	default:
		err = fmt.Errorf("unknown mode %q", mode)
	}
	if b.Close != nil {
		b.Close()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

func keyName(i int) string { return fmt.Sprintf("xp-%02d", i%Keys) }

func request(key string) *http.Request {
	req := httptest.NewRequest(http.MethodPost, "/things", strings.NewReader(`{"key":"`+key+`"}`))
	req.Header.Set(idempotency.HeaderName, key)
	return withCaller(req)
}

func executingHandler(b Backend, delay time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get(idempotency.HeaderName)
		if err := b.Executed(r.Context(), key); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		time.Sleep(delay)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"key":%q,"pid":%d}`, key, os.Getpid())
	})
}

// loadReport is a helper's result line.
type loadReport struct {
	Codes map[int]int `json:"codes"`
}

func helperLoad(b Backend) error {
	m, err := idempotency.New(b.Store)
	if err != nil {
		return err
	}
	h := m.Handler(executingHandler(b, time.Millisecond))
	var mu sync.Mutex
	codes := map[int]int{}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= Requests {
					return
				}
				rr := httptest.NewRecorder()
				h.ServeHTTP(rr, request(keyName(i)))
				mu.Lock()
				codes[rr.Code]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return json.NewEncoder(os.Stdout).Encode(loadReport{Codes: codes})
}

// CrashKey is the key the crash helper claims before it blocks.
const CrashKey = "crash-key"

func helperCrash(b Backend) error {
	m, err := idempotency.New(b.Store)
	if err != nil {
		return err
	}
	h := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := b.Executed(r.Context(), CrashKey); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Println("CLAIMED")
		select {} // hold the lease until killed
	}))
	h.ServeHTTP(httptest.NewRecorder(), request(CrashKey))
	return nil
}

// CrossProcessConfig describes a backend shared by helper processes.
type CrossProcessConfig struct {
	// Env is added to the helpers' environment so their open function
	// finds the backend (file path, Redis URL, key prefix).
	Env []string
	// Backend is the parent's own view of the same backend.
	Backend Backend
	// Executions returns how many times the handler ran, per key.
	Executions func(t *testing.T) map[string]int
}

func helper(t *testing.T, mode string, env []string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), HelperEnv+"="+mode), env...)
	return cmd
}

// RunCrossProcess starts Procs helper processes on one backend, each
// sending Requests requests over Keys keys, and checks that each key's
// handler ran exactly once, that no request got a 5xx, and that the parent
// then replays every key from the shared records.
func RunCrossProcess(t *testing.T, cfg CrossProcessConfig) {
	type result struct {
		out, errOut bytes.Buffer
		err         error
	}
	results := make([]*result, Procs)
	var wg sync.WaitGroup
	for i := range Procs {
		r := &result{}
		results[i] = r
		cmd := helper(t, "load", cfg.Env)
		cmd.Stdout, cmd.Stderr = &r.out, &r.errOut
		require.NoError(t, cmd.Start())
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.err = cmd.Wait()
		}()
	}
	wg.Wait()
	total := map[int]int{}
	for i, r := range results {
		require.NoError(t, r.err, "helper %d: %s", i, r.errOut.String())
		var rep loadReport
		require.NoError(t, json.Unmarshal(r.out.Bytes(), &rep), "helper %d output %q", i, r.out.String())
		n := 0
		for code, c := range rep.Codes {
			total[code] += c
			n += c
			assert.Less(t, code, 500, "helper %d got %d responses with status %d", i, c, code)
		}
		assert.Equal(t, Requests, n)
	}
	t.Logf("status codes over %d processes: %v", Procs, total)
	execs := cfg.Executions(t)
	for i := range Keys {
		assert.Equal(t, 1, execs[keyName(i)], "key %s ran %d times", keyName(i), execs[keyName(i)])
	}
	assert.Len(t, execs, Keys)

	// The records outlive the processes that wrote them.
	m, err := idempotency.New(cfg.Backend.Store)
	require.NoError(t, err)
	h := m.Handler(executingHandler(cfg.Backend, 0))
	for i := range Keys {
		rr := httptest.NewRecorder()
		h.ServeHTTP(rr, request(keyName(i)))
		assert.Equal(t, http.StatusCreated, rr.Code)
		assert.Equal(t, "true", rr.Header().Get(idempotency.DefaultReplayHeader))
	}
	assert.Len(t, cfg.Executions(t), Keys)
}

// RunCrash starts a helper that claims CrashKey and blocks in its handler,
// kills it with SIGKILL, and checks that a retry gets 409 until the lock
// timeout has passed (on an injected clock), then runs.
func RunCrash(t *testing.T, cfg CrossProcessConfig) {
	cmd := helper(t, "crash", cfg.Env)
	var errOut bytes.Buffer
	cmd.Stderr = &errOut
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("helper did not claim: %v: %s", err, errOut.String())
	}
	require.Equal(t, "CLAIMED\n", line)
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	err = cmd.Wait()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, syscall.SIGKILL, ee.Sys().(syscall.WaitStatus).Signal())

	clock := NewClock(time.Now())
	m, err := idempotency.New(cfg.Backend.Store, idempotency.WithClock(clock.Now))
	require.NoError(t, err)
	h := m.Handler(executingHandler(cfg.Backend, 0))
	rr := httptest.NewRecorder()
	h.ServeHTTP(rr, request(CrashKey))
	assert.Equal(t, http.StatusConflict, rr.Code, "the dead process's lease still holds")
	assert.NotEmpty(t, rr.Header().Get("Retry-After"))

	clock.Advance(idempotency.DefaultLockTimeout + time.Second)
	rr = httptest.NewRecorder()
	h.ServeHTTP(rr, request(CrashKey))
	assert.Equal(t, http.StatusCreated, rr.Code, "after the lock timeout the retry runs: %s", rr.Body)
	assert.Equal(t, 2, cfg.Executions(t)[CrashKey])

	rr = httptest.NewRecorder()
	h.ServeHTTP(rr, request(CrashKey))
	assert.Equal(t, http.StatusCreated, rr.Code)
	assert.Equal(t, "true", rr.Header().Get(idempotency.DefaultReplayHeader))
	assert.Equal(t, 2, cfg.Executions(t)[CrashKey])
}
