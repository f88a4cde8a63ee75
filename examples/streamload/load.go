package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/systembuilderhub/hardening/streamauth"
)

const (
	clientEnv = "STREAMLOAD_CLIENT"
	secretEnv = "STREAMLOAD_SECRET"
)

type config struct {
	N           int
	Lead        time.Duration
	Concurrency int
}

// mem is one memory sample of the server process.
type mem struct {
	Heap, Stack, RSS uint64
	Goroutines       int
}

func sample() mem {
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return mem{Heap: ms.HeapAlloc, Stack: ms.StackInuse, RSS: rss(), Goroutines: runtime.NumGoroutine()}
}

func rss() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// perStream is the memory per stream of one kind.
type perStream struct {
	Heap, Stack, RSS, Total float64 // bytes; Total = Heap + Stack
	Goroutines              float64
}

func diff(before, after mem, n int) perStream {
	f := func(a, b uint64) float64 { return (float64(b) - float64(a)) / float64(n) }
	p := perStream{Heap: f(before.Heap, after.Heap), Stack: f(before.Stack, after.Stack), RSS: f(before.RSS, after.RSS),
		Goroutines: float64(after.Goroutines-before.Goroutines) / float64(n)}
	p.Total = p.Heap + p.Stack
	return p
}

// Result is what one run measured.
type Result struct {
	N          int           `json:"n"`
	Bare       perStream     `json:"bare_per_stream"`
	Auth       perStream     `json:"auth_per_stream"`
	Extra      perStream     `json:"extra_per_stream"`
	Dropped    int           `json:"expired_streams_dropped"`
	Within1s   int           `json:"dropped_within_1s"`
	P50        time.Duration `json:"exp_to_drop_p50"`
	P99        time.Duration `json:"exp_to_drop_p99"`
	Max        time.Duration `json:"exp_to_drop_max"`
	OpenAuth   time.Duration `json:"open_auth_duration"`
	GoVersion  string        `json:"go_version"`
	GOMAXPROCS int           `json:"gomaxprocs"`
}

func (r Result) writeJSON(w io.Writer) {
	e := json.NewEncoder(w)
	e.SetIndent("", "  ")
	_ = e.Encode(r)
}

func (r Result) writeTable(w io.Writer) {
	kib := func(b float64) string { return fmt.Sprintf("%.2f KiB", b/1024) }
	fmt.Fprintf(w, "streams: %d bare + %d authenticated SSE (%s, GOMAXPROCS=%d)\n\n", r.N, r.N, r.GoVersion, r.GOMAXPROCS)
	fmt.Fprintf(w, "%-22s %12s %12s %12s %12s %10s\n", "per stream", "heap", "stack", "heap+stack", "RSS", "goroutines")
	for _, row := range []struct {
		name string
		p    perStream
	}{{"bare SSE", r.Bare}, {"streamauth SSE", r.Auth}, {"extra (auth - bare)", r.Extra}} {
		fmt.Fprintf(w, "%-22s %12s %12s %12s %12s %10.2f\n", row.name, kib(row.p.Heap), kib(row.p.Stack), kib(row.p.Total), kib(row.p.RSS), row.p.Goroutines)
	}
	fmt.Fprintf(w, "\nexpiry: %d/%d streams ended with auth_expired, %d within 1s of exp; exp->drop p50 %v, p99 %v, max %v\n",
		r.Dropped, r.N, r.Within1s, r.P50.Round(time.Millisecond), r.P99.Round(time.Millisecond), r.Max.Round(time.Millisecond))
	fmt.Fprintf(w, "opening %d authenticated streams took %v\n", r.N, r.OpenAuth.Round(time.Millisecond))
}

// run serves both kinds of streams, drives the child client and measures.
func run(cfg config, logw io.Writer) (Result, error) {
	if cfg.N <= 0 || cfg.Concurrency <= 0 {
		return Result{}, errors.New("n and c must be positive")
	}
	logf := func(format string, a ...any) { fmt.Fprintf(logw, "streamload: "+format+"\n", a...) }
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	auth, err := streamauth.NewJWT(secret)
	if err != nil {
		return Result{}, err
	}
	reg, err := streamauth.NewRegistry()
	if err != nil {
		return Result{}, err
	}
	authH, err := streamauth.SSE(auth, reg, streamauth.ForwardSSE)
	if err != nil {
		return Result{}, err
	}
	var bareActive atomic.Int64
	bareH := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		bareActive.Add(1)
		defer bareActive.Add(-1)
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		w.WriteHeader(http.StatusOK)
		rc := http.NewResponseController(w)
		_ = rc.Flush()
		t := time.NewTicker(streamauth.DefaultKeepAlive)
		defer t.Stop()
		for {
			select {
			case <-r.Context().Done():
				return
			case <-t.C:
				_, _ = io.WriteString(w, ": keep-alive\n\n")
				_ = rc.Flush()
			}
		}
	})
	mux := http.NewServeMux()
	mux.Handle("GET /bare", bareH)
	mux.Handle("GET /auth", authH)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return Result{}, err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = reg.Close(ctx)
		_ = srv.Shutdown(ctx)
	}()

	exe, err := os.Executable()
	if err != nil {
		return Result{}, err
	}
	cmd := exec.Command(exe, childArgs()...)
	cmd.Env = append(os.Environ(), clientEnv+"=1", secretEnv+"="+hex.EncodeToString(secret))
	cmd.Stderr = logw
	in, _ := cmd.StdinPipe()
	outPipe, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		return Result{}, err
	}
	defer func() { _ = in.Close(); _ = cmd.Wait() }()
	out := bufio.NewScanner(outPipe)
	out.Buffer(make([]byte, 1<<20), 1<<24)
	send := func(c clientCmd) (clientReply, error) {
		b, _ := json.Marshal(c)
		if _, err := fmt.Fprintf(in, "%s\n", b); err != nil {
			return clientReply{}, err
		}
		if !out.Scan() {
			return clientReply{}, fmt.Errorf("client ended: %v", out.Err())
		}
		var rep clientReply
		if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
			return rep, err
		}
		if rep.Error != "" {
			return rep, errors.New(rep.Error)
		}
		return rep, nil
	}
	waitUntil := func(what string, cond func() bool) error {
		for i := 0; i < 6000; i++ {
			if cond() {
				return nil
			}
			time.Sleep(10 * time.Millisecond)
		}
		return fmt.Errorf("timed out waiting for %s", what)
	}
	base := "http://" + ln.Addr().String()
	res := Result{N: cfg.N, GoVersion: runtime.Version(), GOMAXPROCS: runtime.GOMAXPROCS(0)}

	// Bare streams.
	m0 := sample()
	logf("opening %d bare streams", cfg.N)
	if _, err := send(clientCmd{Op: "open", URL: base + "/bare", N: cfg.N, C: cfg.Concurrency}); err != nil {
		return res, err
	}
	if err := waitUntil("bare streams", func() bool { return bareActive.Load() == int64(cfg.N) }); err != nil {
		return res, err
	}
	m1 := sample()
	if _, err := send(clientCmd{Op: "close"}); err != nil {
		return res, err
	}
	if err := waitUntil("bare streams closed", func() bool { return bareActive.Load() == 0 }); err != nil {
		return res, err
	}
	time.Sleep(500 * time.Millisecond)

	// Authenticated streams, all expiring at the same second.
	m2 := sample()
	exp := time.Now().Add(cfg.Lead + openBudget(cfg.N)).Truncate(time.Second)
	logf("opening %d authenticated streams expiring at %s", cfg.N, exp.Format(time.TimeOnly))
	start := time.Now()
	if _, err := send(clientCmd{Op: "open", URL: base + "/auth", N: cfg.N, C: cfg.Concurrency, Exp: exp.Unix()}); err != nil {
		return res, err
	}
	if err := waitUntil("auth streams", func() bool { return reg.Status().Active == cfg.N }); err != nil {
		return res, err
	}
	res.OpenAuth = time.Since(start)
	m3 := sample()
	if time.Now().After(exp) {
		return res, fmt.Errorf("streams took too long to open; raise -lead")
	}
	logf("measured; waiting for exp (%v)", time.Until(exp).Round(time.Second))
	rep, err := send(clientCmd{Op: "await_expiry", Exp: exp.Unix()})
	if err != nil {
		return res, err
	}

	res.Bare = diff(m0, m1, cfg.N)
	res.Auth = diff(m2, m3, cfg.N)
	res.Extra = perStream{Heap: res.Auth.Heap - res.Bare.Heap, Stack: res.Auth.Stack - res.Bare.Stack,
		RSS: res.Auth.RSS - res.Bare.RSS, Total: res.Auth.Total - res.Bare.Total, Goroutines: res.Auth.Goroutines - res.Bare.Goroutines}
	lat := rep.Latencies
	slices.Sort(lat)
	res.Dropped = len(lat)
	for _, l := range lat {
		if l <= time.Second {
			res.Within1s++
		}
	}
	if len(lat) > 0 {
		res.P50, res.P99, res.Max = lat[len(lat)/2], lat[(len(lat)*99)/100], lat[len(lat)-1]
	}
	_, _ = send(clientCmd{Op: "close"})
	return res, nil
}

// openBudget is a generous estimate of how long opening n streams takes.
func openBudget(n int) time.Duration { return time.Duration(n/500+2) * time.Second }

// childArgs keeps a test binary running only the helper.
func childArgs() []string {
	if strings.HasSuffix(os.Args[0], ".test") {
		return []string{"-test.run=^TestHelperProcess$"}
	}
	return nil
}

type clientCmd struct {
	Op  string `json:"op"`
	URL string `json:"url,omitempty"`
	N   int    `json:"n,omitempty"`
	C   int    `json:"c,omitempty"`
	Exp int64  `json:"exp,omitempty"`
}

type clientReply struct {
	Error     string          `json:"error,omitempty"`
	Latencies []time.Duration `json:"latencies,omitempty"`
}

// runClient is the child process: it opens and reads streams on command.
func runClient(in io.Reader, out io.Writer) error {
	secret, err := hex.DecodeString(os.Getenv(secretEnv))
	if err != nil {
		return err
	}
	auth, err := streamauth.NewJWT(secret)
	if err != nil {
		return err
	}
	var conns []*streamConn
	sc := bufio.NewScanner(in)
	enc := json.NewEncoder(out)
	for sc.Scan() {
		var c clientCmd
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			return err
		}
		var rep clientReply
		switch c.Op {
		case "open":
			conns, err = openAll(auth, c)
			if err != nil {
				rep.Error = err.Error()
			}
		case "close":
			for _, sc := range conns {
				_ = sc.conn.Close()
			}
			for _, sc := range conns {
				<-sc.done
			}
			conns = nil
		case "await_expiry":
			exp := time.Unix(c.Exp, 0)
			deadline := time.After(time.Until(exp) + 30*time.Second)
			for _, sc := range conns {
				select {
				case <-sc.done:
					if !sc.expiredAt.IsZero() {
						rep.Latencies = append(rep.Latencies, sc.expiredAt.Sub(exp))
					}
				case <-deadline:
				}
			}
		default:
			rep.Error = "unknown op " + c.Op
		}
		if err := enc.Encode(rep); err != nil {
			return err
		}
	}
	return sc.Err()
}

type streamConn struct {
	conn      net.Conn
	done      chan struct{}
	expiredAt time.Time
}

func openAll(auth *streamauth.JWTAuthenticator, c clientCmd) ([]*streamConn, error) {
	conns := make([]*streamConn, c.N)
	var wg sync.WaitGroup
	var firstErr error
	var mu sync.Mutex
	sem := make(chan struct{}, c.C)
	host := strings.TrimPrefix(c.URL, "http://")
	host, path, _ := strings.Cut(host, "/")
	for i := range conns {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			hdr := ""
			if c.Exp != 0 {
				tok, err := auth.Sign(streamauth.Claims{RegisteredClaims: jwt.RegisteredClaims{
					Subject: "user-" + strconv.Itoa(i), ExpiresAt: jwt.NewNumericDate(time.Unix(c.Exp, 0))},
					Tenant: "tenant-" + strconv.Itoa(i%100)})
				if err != nil {
					panic(err)
				}
				hdr = "Authorization: Bearer " + tok + "\r\n"
			}
			s, err := openStream(host, "/"+path, hdr)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				return
			}
			conns[i] = s
		})
	}
	wg.Wait()
	out := conns[:0]
	for _, s := range conns {
		if s != nil {
			out = append(out, s)
		}
	}
	return out, firstErr
}

func openStream(host, path, hdr string) (*streamConn, error) {
	conn, err := net.DialTimeout("tcp", host, 30*time.Second)
	if err != nil {
		return nil, err
	}
	if _, err := fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n%s\r\n", path, host, hdr); err != nil {
		conn.Close()
		return nil, err
	}
	br := bufio.NewReaderSize(conn, 1024)
	status, err := br.ReadString('\n')
	if err != nil {
		conn.Close()
		return nil, err
	}
	if !strings.Contains(status, " 200 ") {
		conn.Close()
		return nil, fmt.Errorf("status %q", strings.TrimSpace(status))
	}
	s := &streamConn{conn: conn, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			if strings.HasPrefix(line, "event: auth_expired") {
				s.expiredAt = time.Now()
				conn.Close()
				return
			}
		}
	}()
	return s, nil
}
