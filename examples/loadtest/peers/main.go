// Command peers measures the hardening kit against peer libraries doing
// the same job, in one process and one run, and prints the ratios:
//
//	rate-memory        tenancy.Quotas.Allow on the memory store  vs  sethvargo/go-limiter memorystore
//	rate-memory-store  tenancy.MemoryStore.TakeRate              vs  sethvargo/go-limiter memorystore
//	rate-redis         tenancy.Quotas.Allow on redisstore        vs  go-redis/redis_rate/v10, same Redis
//	rate-redis-store   redisstore.Store.TakeRate                 vs  go-redis/redis_rate/v10, same Redis
//	token-preview      previewsec.Verifier.Verify                vs  golang-jwt jwt.Parse, HS256, same key
//	token-bearer       streamauth.JWTAuthenticator               vs  golang-jwt jwt.Parse, HS256, same key
//
// It lives in its own module (this directory's go.mod, which replaces the
// kit with ../../..) so the peers never enter the kit's go.mod. Run it from
// this directory, or from the kit's root with go -C:
//
//	go -C examples/loadtest/peers run .                                   # Redis pairs on in-process miniredis
//	go -C examples/loadtest/peers run . -redis redis://127.0.0.1:6379/0   # on a Redis you started
//	go -C examples/loadtest/peers test -run '^$' -bench . -benchmem ./... # the same pairs as Go benchmarks
//
// Every call is sequential on one goroutine. Each pair alternates kit and
// peer for -rounds rounds of -duration, swapping which goes first; the
// ratio is kit ops/s ÷ peer ops/s over all rounds (1 or more: the kit is
// at least as fast), with the spread of the per-round ratios. go run
// ./examples/loadtest runs this program and prints its table too.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// Result is a whole run.
type Result struct {
	GoVersion string  `json:"go_version"`
	NumCPU    int     `json:"num_cpu"`
	Redis     string  `json:"redis"`
	Rounds    int     `json:"rounds"`
	Duration  string  `json:"duration"`
	Rows      []Row   `json:"rows"`
	Target    float64 `json:"target"`
}

type config struct {
	Redis    string
	Rounds   int
	Duration time.Duration
	Only     string
}

func main() {
	var cfg config
	flag.StringVar(&cfg.Redis, "redis", "", "URL of a running Redis for the Redis pairs (default: in-process miniredis)")
	flag.IntVar(&cfg.Rounds, "rounds", 3, "alternating rounds per side")
	flag.DurationVar(&cfg.Duration, "duration", 300*time.Millisecond, "length of one round on one side")
	flag.StringVar(&cfg.Only, "run", "", "measure only the pairs whose name contains this")
	asJSON := flag.Bool("json", false, "print the result as JSON")
	out := flag.String("out", "", "also write the result as JSON to this file")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := run(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "peers:", err)
		os.Exit(1)
	}
	if *out != "" {
		f, err := os.Create(*out)
		if err == nil {
			res.writeJSON(f)
			err = f.Close()
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "peers: -out:", err)
			os.Exit(1)
		}
	}
	if *asJSON {
		res.writeJSON(os.Stdout)
		return
	}
	res.writeMarkdown(os.Stdout)
}

func (r Result) writeJSON(w io.Writer) {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(r)
}

// run measures every pair.
func run(ctx context.Context, cfg config) (Result, error) {
	if cfg.Rounds < 1 || cfg.Duration <= 0 {
		return Result{}, errors.New("-rounds and -duration must be positive")
	}
	res := Result{GoVersion: runtime.Version(), NumCPU: runtime.NumCPU(), Rounds: cfg.Rounds, Duration: cfg.Duration.String(), Target: 1}
	rdb, label, closeRedis, err := openRedis(cfg.Redis)
	if err != nil {
		return res, err
	}
	defer closeRedis()
	res.Redis = label
	prefix := fmt.Sprintf("loadtest-peers:%08x:", rand.Uint32())
	pairs, closePairs, err := newPairs(ctx, rdb, prefix)
	if err != nil {
		return res, err
	}
	defer closePairs()
	defer cleanRedis(rdb, prefix)
	for _, p := range pairs {
		if cfg.Only != "" && !strings.Contains(p.Name, cfg.Only) {
			continue
		}
		row, err := measurePair(ctx, p, cfg.Rounds, cfg.Duration)
		if err != nil {
			return res, fmt.Errorf("%s: %w", p.Name, err)
		}
		res.Rows = append(res.Rows, row)
	}
	return res, nil
}

// openRedis connects to url, or starts an in-process miniredis when url
// is empty; label says which for the report.
func openRedis(url string) (redis.UniversalClient, string, func(), error) {
	if url == "" {
		mr, err := miniredis.Run()
		if err != nil {
			return nil, "", nil, err
		}
		rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
		return rdb, "miniredis (in-process)", func() { _ = rdb.Close(); mr.Close() }, nil
	}
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, "", nil, fmt.Errorf("-redis: %w", err)
	}
	rdb := redis.NewClient(opt)
	if err := rdb.Ping(context.Background()).Err(); err != nil {
		_ = rdb.Close()
		return nil, "", nil, fmt.Errorf("-redis: %w", err)
	}
	label := "redis-server at " + opt.Addr
	if info, err := rdb.InfoMap(context.Background(), "server").Result(); err == nil {
		if v := info["Server"]["redis_version"]; v != "" {
			label = "redis-server " + v + " at " + opt.Addr
		}
	}
	return rdb, label, func() { _ = rdb.Close() }, nil
}

// cleanRedis deletes the run's keys.
func cleanRedis(rdb redis.UniversalClient, prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	iter := rdb.Scan(ctx, 0, prefix+"*", 100).Iterator()
	for iter.Next(ctx) {
		rdb.Del(ctx, iter.Val())
	}
}

// writeMarkdown prints the result as a Markdown table.
func (r Result) writeMarkdown(w io.Writer) {
	fmt.Fprintf(w, "Peers: %s, %d CPUs, one goroutine, %d alternating rounds of %s per side; Redis pairs on %s.\n",
		r.GoVersion, r.NumCPU, r.Rounds, r.Duration, r.Redis)
	fmt.Fprintln(w, "ratio = kit ops/s ÷ peer ops/s over all rounds (spread: min–max of the per-round ratios); ≥ 1.00× means the kit is at least as fast.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| pair | kit | peer | kit ns/op | peer ns/op | ratio | spread | kit allocs/op | peer allocs/op | ≥ 1.00× |")
	fmt.Fprintln(w, "|---|---|---|--:|--:|--:|--:|--:|--:|---|")
	for _, x := range r.Rows {
		ok := "yes"
		if x.Ratio < r.Target {
			ok = "**no**"
		}
		fmt.Fprintf(w, "| %s | %s | %s | %.0f | %.0f | %.2f× | %.2f–%.2f | %.1f | %.1f | %s |\n", x.Name, x.Kit, x.Peer,
			x.KitSide.NsPerOp, x.PeerSide.NsPerOp, x.Ratio, x.RatioMin, x.RatioMax, x.KitSide.AllocsPerOp, x.PeerSide.AllocsPerOp, ok)
	}
}
