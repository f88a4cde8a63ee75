// Command loadtest measures what the hardening kit's middleware costs a
// request: it drives the hub (the binary, built from examples/hub unless
// -hub names one) and a bare net/http server that runs the same handler
// work with no middleware at all (no bearer auth, idempotency, quotas,
// preview tokens or flag store), alternating rounds between them in one
// run, and reports each side's throughput and p50/p99 latency and their
// ratio for five scenarios:
//
//	preview      GET /preview/{id}/ with a valid preview token
//	idem-first   POST /api/v1/echo with a fresh Idempotency-Key
//	idem-replay  POST /api/v1/echo repeating a completed key
//	quota        POST /api/v1/systems/{id}/snapshots (a snapshot-rate decision)
//	flags        GET /api/v1/feature-flags (every flag evaluated)
//
// Stores: "sqlite" and "redis" run the hub binary (redis with
// REDIS_URL=-redis, which must name a running server: the program starts
// none); "memory" runs the same middleware chain built in-process on the
// packages' memory stores, because the hub has no memory mode; "postgres"
// runs that in-process chain on the kit's Postgres stores (idempotency,
// tenancy, previewsec keys and revocations, flags) on the server -postgres
// names, in a private schema loadtest_<8 hex digits> that the run
// creates, migrates (migrate.Up), reaches through search_path and drops
// at the end, so it touches no other data there. The bare server and the
// in-process chains run in child processes (this program re-executed),
// the hub in its own, so the load generator is alone in its process.
//
//	go run ./examples/loadtest                          # ~1-2 min: memory + sqlite
//	go run ./examples/loadtest -redis redis://127.0.0.1:6379/0 -stores memory,sqlite,redis
//	go run ./examples/loadtest -postgres 'postgres://app@127.0.0.1:5432/app?sslmode=disable' -stores memory,postgres
//	go run ./examples/loadtest -duration 10s -rounds 5 -concurrency 16   # the longer run
//
// After the load, in the same run, it prints two more tables:
//
//   - allocations, bytes and CPU time per request of every scenario,
//     served in-process (httptest, no network) by the bare handler and the
//     memory chain, counted with runtime.MemStats around -alloc-requests
//     requests (the numbers BenchmarkRequest reports);
//   - the peer table: the kit's rate decisions and token verification
//     against sethvargo/go-limiter, go-redis/redis_rate and golang-jwt,
//     from the nested module examples/loadtest/peers (its own go.mod, so the
//     peers stay out of the kit's), run with go -C on the same -redis
//     (miniredis when none). -peers=false skips it; alone it is
//     `go -C examples/loadtest/peers run . -redis URL`.
//
// The -postgres role must be able to create a schema in its database.
//
// The tables it prints are Markdown; -json prints the same figures as JSON.
// The machine's noise is large, so give figures over several runs:
//
//	for i in 1 2 3; do go run ./examples/loadtest -redis URL -json > run$i.json; done
//	go run ./examples/loadtest -spread run1.json run2.json run3.json   # median (min–max) of every table
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"
)

// serveEnv makes this program a server child: "bare", "memory" or
// "postgres" (the chain on the schema at postgresURLEnv).
const (
	serveEnv  = "LOADTEST_SERVE"
	secretEnv = "LOADTEST_SECRET"
)

// config is one run's settings.
type config struct {
	Duration    time.Duration
	Rounds      int
	Concurrency int
	Scenarios   string
	Stores      string
	Redis       string
	Hub         string
	// Postgres is the URL of a running PostgreSQL for the postgres row;
	// the run works in a schema of its own there (pgSchema).
	Postgres string
	// AllocRequests is the in-process requests per allocation cell; 0
	// skips the allocation table.
	AllocRequests int
	// Peers runs the peers module's program after the load.
	Peers bool
	// InProcess serves bare and memory in this process (the smoke test).
	InProcess bool

	scenarios []scenario
	stores    []string
	// pgURL is the postgres row's schema URL, while it runs.
	pgURL string
}

func main() {
	if kind := os.Getenv(serveEnv); kind != "" {
		if err := serveChild(kind, os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "loadtest server:", err)
			os.Exit(1)
		}
		return
	}
	var cfg config
	flag.DurationVar(&cfg.Duration, "duration", time.Second, "length of one round on one side")
	flag.IntVar(&cfg.Rounds, "rounds", 3, "rounds per side and scenario (alternating chain and bare)")
	flag.IntVar(&cfg.Concurrency, "concurrency", 8, "concurrent client connections")
	flag.StringVar(&cfg.Scenarios, "scenarios", "preview,idem-first,idem-replay,quota,flags", "comma list of scenarios")
	flag.StringVar(&cfg.Stores, "stores", "", "comma list of memory, sqlite, redis, postgres (default memory,sqlite, plus redis and postgres when -redis and -postgres are set)")
	flag.StringVar(&cfg.Redis, "redis", "", "URL of a running Redis for the redis store (redis://127.0.0.1:6379/0)")
	flag.StringVar(&cfg.Hub, "hub", "", "hub binary to run (default: go build ./examples/hub into a temp dir)")
	flag.StringVar(&cfg.Postgres, "postgres", "", "URL of a running PostgreSQL for the postgres store; the run creates, uses and drops a schema loadtest_<random> there")
	flag.IntVar(&cfg.AllocRequests, "alloc-requests", 2000, "in-process requests per scenario and side for the allocation table (0: skip it)")
	flag.BoolVar(&cfg.Peers, "peers", true, "run the peer comparisons ("+peersHint+") after the load")
	asJSON := flag.Bool("json", false, "print the result as JSON")
	spreadOf := flag.Bool("spread", false, "measure nothing: print the median (min–max) of the -json results named as arguments")
	flag.Parse()
	if *spreadOf {
		if err := spreadMain(os.Stdout, flag.Args()); err != nil {
			fmt.Fprintln(os.Stderr, "loadtest:", err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := run(ctx, cfg, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(1)
	}
	if *asJSON {
		res.writeJSON(os.Stdout)
	} else {
		res.writeMarkdown(os.Stdout)
	}
}

func (c *config) check() error {
	if c.Duration <= 0 || c.Rounds < 1 || c.Concurrency < 1 {
		return errors.New("-duration, -rounds and -concurrency must be positive")
	}
	names, err := parseList(c.Scenarios, []string{"preview", "idem-first", "idem-replay", "quota", "flags"})
	if err != nil {
		return fmt.Errorf("-scenarios: %w", err)
	}
	c.scenarios = nil
	for _, n := range names {
		sc, _ := scenarioByName(n)
		c.scenarios = append(c.scenarios, sc)
	}
	if c.Stores == "" {
		c.Stores = "memory,sqlite"
		if c.Redis != "" {
			c.Stores += ",redis"
		}
		if c.Postgres != "" {
			c.Stores += ",postgres"
		}
	}
	if c.stores, err = parseList(c.Stores, []string{"memory", "sqlite", "redis", "postgres"}); err != nil {
		return fmt.Errorf("-stores: %w", err)
	}
	if slices.Contains(c.stores, "redis") && c.Redis == "" {
		return errors.New("-stores redis needs -redis URL (of a server you started)")
	}
	if slices.Contains(c.stores, "postgres") && c.Postgres == "" {
		return errors.New("-stores postgres needs -postgres URL (of a server you started)")
	}
	if c.AllocRequests < 0 {
		return errors.New("-alloc-requests must not be negative")
	}
	return nil
}

// run measures every store of cfg.
func run(ctx context.Context, cfg config, logw io.Writer) (Result, error) {
	if err := cfg.check(); err != nil {
		return Result{}, err
	}
	res := Result{GoVersion: runtime.Version(), NumCPU: runtime.NumCPU(), Concurrency: cfg.Concurrency,
		Duration: cfg.Duration.String(), Rounds: cfg.Rounds, RTTMicros: map[string]float64{}}
	// The hub takes HUB_AUTH_SECRET's bytes as they are: a hex string.
	raw := make([]byte, 32)
	_, _ = rand.Read(raw)
	secret := []byte(hex.EncodeToString(raw))
	tmp, err := os.MkdirTemp("", "loadtest-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(tmp)
	client := &http.Client{Transport: &http.Transport{
		MaxIdleConns: cfg.Concurrency * 2, MaxIdleConnsPerHost: cfg.Concurrency * 2, IdleConnTimeout: time.Minute,
		DisableCompression: true,
	}, Timeout: 30 * time.Second}
	defer client.CloseIdleConnections()

	bareURL, stopBare, err := startChild(ctx, cfg, "bare", secret)
	if err != nil {
		return res, err
	}
	defer stopBare()
	newTarget := func(kind, base string) (*target, error) {
		t := &target{kind: kind, base: base, runID: newRunID(), client: client}
		return t, t.setup(ctx, secret)
	}
	for _, store := range cfg.stores {
		bare, err := newTarget("bare", bareURL)
		if err != nil {
			return res, err
		}
		sc, err := startStore(ctx, &cfg, store, secret, tmp, logw)
		if err != nil {
			return res, fmt.Errorf("%s: %w", store, err)
		}
		res.RTTMicros[store] = float64(sc.rtt) / 1e3
		chain, err := newTarget(sc.kind, sc.url)
		if err == nil {
			var rows []Row
			rows, err = measure(ctx, cfg, store, chain, bare, sc.rtt, logw)
			res.Rows = append(res.Rows, rows...)
		}
		client.CloseIdleConnections()
		note, serr := sc.stop()
		if note != "" {
			res.Notes = append(res.Notes, note)
		}
		if err = errors.Join(err, serr); err != nil {
			return res, err
		}
	}
	return res, afterLoad(ctx, cfg, &res, secret, tmp, logw)
}

// startChild runs the bare server or the memory chain: in this process
// with cfg.InProcess, else as a child process of this program.
func startChild(ctx context.Context, cfg config, kind string, secret []byte) (string, func(), error) {
	if cfg.InProcess {
		h, closeH, err := serverHandler(ctx, kind, secret, cfg.pgURL)
		if err != nil {
			return "", nil, err
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			closeH()
			return "", nil, err
		}
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		return "http://" + ln.Addr().String(), func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = srv.Shutdown(sctx)
			closeH()
		}, nil
	}
	self, err := os.Executable()
	if err != nil {
		return "", nil, err
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), serveEnv+"="+kind, secretEnv+"="+string(secret), postgresURLEnv+"="+cfg.pgURL)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return "", nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stopIt := func() {
		_ = stdin.Close() // the child serves until its stdin closes
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		stopIt()
		return "", nil, fmt.Errorf("%s server did not start: %w", kind, err)
	}
	return "http://" + strings.TrimSpace(line), stopIt, nil
}

// serverHandler builds the bare handler or the chain on memory or
// Postgres (the schema at pgURL) stores.
func serverHandler(ctx context.Context, kind string, secret []byte, pgURL string) (http.Handler, func(), error) {
	switch kind {
	case "bare":
		return bareHandler(), func() {}, nil
	case "memory", "postgres":
		st := memoryStores()
		if kind == "postgres" {
			var err error
			if st, err = postgresStores(pgURL); err != nil {
				return nil, nil, err
			}
		}
		c, err := newChain(ctx, secret, st)
		if err != nil {
			if st.close != nil {
				_ = st.close()
			}
			return nil, nil, err
		}
		return c.Handler(), func() {
			cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = c.Close(cctx)
		}, nil
	}
	return nil, nil, fmt.Errorf("unknown server kind %q", kind)
}

// serveChild is the child's main: serve kind on a loopback port, print the
// address, stop when stdin closes.
func serveChild(kind string, stdin io.Reader, stdout io.Writer) error {
	secret := []byte(os.Getenv(secretEnv))
	if len(secret) == 0 {
		return errors.New(secretEnv + " is not set")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h, closeH, err := serverHandler(ctx, kind, secret, os.Getenv(postgresURLEnv))
	if err != nil {
		return err
	}
	defer closeH()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	go func() { _ = srv.Serve(ln) }()
	fmt.Fprintln(stdout, ln.Addr().String())
	_, _ = io.Copy(io.Discard, stdin)
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	return srv.Shutdown(sctx)
}
