package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// scenario is one kind of request the load generator repeats.
type scenario struct {
	Name string
	Desc string
	// Status is the answer every request must get; others count as errors.
	Status int
	build  func(t *target, worker int, seq uint64) (*http.Request, error)
}

// echoBody is the JSON body of the idempotent POSTs.
var echoBody = []byte(`{"kind":"loadtest","n":1}`)

func post(url, tok, key string, body []byte) (*http.Request, error) {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	if len(body) > 0 {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	return req, nil
}

func get(url, tok string) (*http.Request, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	return req, nil
}

// scenarios are the five request kinds, in report order.
var scenarios = []scenario{
	{Name: "preview", Status: http.StatusOK, Desc: "GET /preview/{id}/ with a valid preview token (Authorization: Bearer)",
		build: func(t *target, _ int, _ uint64) (*http.Request, error) {
			return get(t.base+"/preview/"+t.fx.previewID+"/", t.fx.previewToken)
		}},
	{Name: "idem-first", Status: http.StatusCreated, Desc: "POST /api/v1/echo with a fresh Idempotency-Key",
		build: func(t *target, w int, seq uint64) (*http.Request, error) {
			return post(t.base+"/api/v1/echo", t.fx.userToken, fmt.Sprintf("lt-%s-%d-%d", t.runID, w, seq), echoBody)
		}},
	{Name: "idem-replay", Status: http.StatusCreated, Desc: "POST /api/v1/echo repeating a completed Idempotency-Key",
		build: func(t *target, _ int, _ uint64) (*http.Request, error) {
			return post(t.base+"/api/v1/echo", t.fx.userToken, t.fx.replayKey, echoBody)
		}},
	{Name: "quota", Status: http.StatusCreated, Desc: "POST /api/v1/systems/{id}/snapshots: one snapshot-rate decision (limit set high)",
		build: func(t *target, _ int, _ uint64) (*http.Request, error) {
			return post(t.base+"/api/v1/systems/"+bareSystem+"/snapshots", t.fx.userToken, "", nil)
		}},
	{Name: "flags", Status: http.StatusOK, Desc: "GET /api/v1/feature-flags: every flag evaluated for the caller's tenant",
		build: func(t *target, _ int, _ uint64) (*http.Request, error) {
			return get(t.base+"/api/v1/feature-flags", t.fx.userToken)
		}},
}

func scenarioByName(name string) (scenario, bool) {
	for _, s := range scenarios {
		if s.Name == name {
			return s, true
		}
	}
	return scenario{}, false
}

// fixture is what the scenarios need from a server, made by setup.
type fixture struct {
	userToken    string
	previewID    string
	previewToken string
	replayKey    string
}

// target is one server under load.
type target struct {
	kind   string // "hub", "chain" or "bare"
	base   string // http://host:port
	runID  string
	fx     fixture
	client *http.Client
}

// setup creates the fixture: a preview with its token and a completed
// Idempotency-Key to replay.
func (t *target) setup(ctx context.Context, secret []byte) error {
	tok, err := mintHubToken(secret, "loaduser", bareTenant, false, 24*time.Hour)
	if err != nil {
		return err
	}
	t.fx.userToken = tok
	req, err := post(t.base+"/api/v1/previews", tok, "", []byte(`{"system_id":"`+bareSystem+`"}`))
	if err != nil {
		return err
	}
	var pv struct {
		PreviewID string `json:"preview_id"`
		Token     string `json:"token"`
	}
	if err := t.call(ctx, req, http.StatusCreated, &pv); err != nil {
		return fmt.Errorf("%s: create preview: %w", t.kind, err)
	}
	if pv.PreviewID == "" || pv.Token == "" {
		return fmt.Errorf("%s: create preview: no preview_id or token in the answer", t.kind)
	}
	t.fx.previewID, t.fx.previewToken = pv.PreviewID, pv.Token
	t.fx.replayKey = "lt-replay-" + t.runID
	req, err = post(t.base+"/api/v1/echo", tok, t.fx.replayKey, echoBody)
	if err != nil {
		return err
	}
	if err := t.call(ctx, req, http.StatusCreated, nil); err != nil {
		return fmt.Errorf("%s: first echo: %w", t.kind, err)
	}
	return nil
}

func (t *target) call(ctx context.Context, req *http.Request, want int, out any) error {
	resp, err := t.client.Do(req.WithContext(ctx))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		return fmt.Errorf("status %d, want %d: %.300s", resp.StatusCode, want, b)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// sample is what one timed stretch of load measured.
type sample struct {
	n, errs   int
	elapsed   time.Duration
	latencies []time.Duration
	firstErr  string
}

func (s *sample) add(o sample) {
	s.n += o.n
	s.errs += o.errs
	s.elapsed += o.elapsed
	s.latencies = append(s.latencies, o.latencies...)
	if s.firstErr == "" {
		s.firstErr = o.firstErr
	}
}

// drive runs sc against t with conc workers for d, each sending requests
// back to back over keep-alive connections.
func drive(ctx context.Context, t *target, sc scenario, conc int, d time.Duration, seq *atomic.Uint64) sample {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	results := make([]sample, conc)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := &results[w]
			res.latencies = make([]time.Duration, 0, 1024)
			for ctx.Err() == nil {
				req, err := sc.build(t, w, seq.Add(1))
				if err != nil {
					res.errs++
					res.firstErr = err.Error()
					return
				}
				t0 := time.Now()
				resp, err := t.client.Do(req.WithContext(ctx))
				if err != nil {
					if ctx.Err() != nil {
						return // the stretch ended mid-request: not counted
					}
					res.errs++
					if res.firstErr == "" {
						res.firstErr = err.Error()
					}
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				lat := time.Since(t0)
				if resp.StatusCode != sc.Status {
					res.errs++
					if res.firstErr == "" {
						res.firstErr = fmt.Sprintf("status %d, want %d", resp.StatusCode, sc.Status)
					}
					continue
				}
				res.n++
				res.latencies = append(res.latencies, lat)
			}
		}()
	}
	wg.Wait()
	var total sample
	total.elapsed = time.Since(start)
	for _, r := range results {
		r.elapsed = 0
		total.add(r)
	}
	return total
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1) * p)
	return sorted[i]
}

// Side is one server's result in one scenario.
type Side struct {
	Requests  int     `json:"requests"`
	Errors    int     `json:"errors"`
	RPS       float64 `json:"rps"`
	P50Micros float64 `json:"p50_us"`
	P99Micros float64 `json:"p99_us"`
	FirstErr  string  `json:"first_error,omitempty"`
}

func sideOf(s sample) Side {
	slices.Sort(s.latencies)
	out := Side{Requests: s.n, Errors: s.errs, FirstErr: s.firstErr,
		P50Micros: float64(percentile(s.latencies, 0.50)) / 1e3, P99Micros: float64(percentile(s.latencies, 0.99)) / 1e3}
	if s.elapsed > 0 {
		out.RPS = float64(s.n) / s.elapsed.Seconds()
	}
	return out
}

// Row is one scenario on one store: the full chain against bare.
type Row struct {
	Store    string `json:"store"`
	Scenario string `json:"scenario"`
	Chain    Side   `json:"chain"`
	Bare     Side   `json:"bare"`
	// Ratio is chain throughput / bare throughput.
	Ratio float64 `json:"ratio"`
	// Target is the throughput ratio the chain should reach on this store.
	Target float64 `json:"target"`
	// P99BoundMicros is 2 × bare p99 + the store's round trip.
	P99BoundMicros float64 `json:"p99_bound_us"`
	ThroughputOK   bool    `json:"throughput_ok"`
	P99OK          bool    `json:"p99_ok"`
}

// Result is a whole run.
type Result struct {
	GoVersion   string             `json:"go_version"`
	NumCPU      int                `json:"num_cpu"`
	Concurrency int                `json:"concurrency"`
	Duration    string             `json:"duration"`
	Rounds      int                `json:"rounds"`
	RTTMicros   map[string]float64 `json:"store_rtt_us"`
	Rows        []Row              `json:"rows"`
	// AllocRequests is how many in-process requests each Allocs cell
	// counts.
	AllocRequests int        `json:"alloc_requests,omitempty"`
	Allocs        []AllocRow `json:"allocations,omitempty"`
	// Peers is the peers program's JSON result (examples/loadtest/peers).
	Peers json.RawMessage `json:"peers,omitempty"`
	// Notes say what was skipped and why.
	Notes []string `json:"notes,omitempty"`

	peersMarkdown string
}

// targets are issue 17's goals; postgres, which it predates, gets the
// goal of the other network and file stores.
var targets = map[string]float64{"memory": 0.85, "sqlite": 0.5, "redis": 0.5, "postgres": 0.5}

func newRunID() string { return fmt.Sprintf("%08x", rand.Uint32()) }

// measure runs every scenario alternately on chain and bare for one store.
func measure(ctx context.Context, cfg config, store string, chain, bare *target, rtt time.Duration, logw io.Writer) ([]Row, error) {
	var rows []Row
	for _, sc := range cfg.scenarios {
		var seqC, seqB atomic.Uint64
		var cs, bs sample
		warm := min(cfg.Duration/4, 500*time.Millisecond)
		drive(ctx, chain, sc, cfg.Concurrency, warm, &seqC)
		drive(ctx, bare, sc, cfg.Concurrency, warm, &seqB)
		for r := range cfg.Rounds {
			order := []*target{chain, bare}
			if r%2 == 1 {
				order = []*target{bare, chain}
			}
			for _, t := range order {
				if err := ctx.Err(); err != nil {
					return rows, err
				}
				if t == chain {
					cs.add(drive(ctx, t, sc, cfg.Concurrency, cfg.Duration, &seqC))
				} else {
					bs.add(drive(ctx, t, sc, cfg.Concurrency, cfg.Duration, &seqB))
				}
			}
		}
		row := Row{Store: store, Scenario: sc.Name, Chain: sideOf(cs), Bare: sideOf(bs), Target: targets[store]}
		if row.Bare.RPS > 0 {
			row.Ratio = row.Chain.RPS / row.Bare.RPS
		}
		row.P99BoundMicros = 2*row.Bare.P99Micros + float64(rtt)/1e3
		row.ThroughputOK = row.Ratio >= row.Target
		row.P99OK = row.Chain.P99Micros <= row.P99BoundMicros
		fmt.Fprintf(logw, "loadtest: %-6s %-11s chain %8.0f req/s  bare %8.0f req/s  ratio %.2f  errors %d/%d\n",
			store, sc.Name, row.Chain.RPS, row.Bare.RPS, row.Ratio, row.Chain.Errors, row.Bare.Errors)
		if row.Chain.Errors+row.Bare.Errors > 0 {
			fmt.Fprintf(logw, "loadtest:   first errors: chain %q, bare %q\n", row.Chain.FirstErr, row.Bare.FirstErr)
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// parseList splits a comma list and checks every name against allowed.
func parseList(s string, allowed []string) ([]string, error) {
	var out []string
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if !slices.Contains(allowed, f) {
			return nil, fmt.Errorf("unknown %q (want some of %s)", f, strings.Join(allowed, ","))
		}
		out = append(out, f)
	}
	if len(out) == 0 {
		return nil, errors.New("empty list")
	}
	return out, nil
}
