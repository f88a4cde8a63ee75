package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// In-process requests: each scenario served through the bare handler and
// through the memory chain with httptest, no network, so that what the
// middleware adds per request shows as allocations and CPU time without
// the noise of the load generator. Both columns include the httptest
// request and recorder (about 20 allocations).

// inproc is the memory chain and the bare handler set up for in-process
// requests: a preview with its token and a completed key to replay.
type inproc struct {
	chain        *memoryChain
	handlers     []namedHandler // bare first, then the chain
	userToken    string
	previewID    string
	previewToken string
}

type namedHandler struct {
	name string
	h    http.Handler
}

// inprocScenario is one scenario as an in-process request.
type inprocScenario struct {
	name   string
	status int
	req    func(s *inproc, i int) *http.Request
}

const inprocReplayKey = "replay-1"

var inprocScenarios = []inprocScenario{
	{"preview", http.StatusOK, func(s *inproc, _ int) *http.Request {
		return inprocReq(http.MethodGet, "/preview/"+s.previewID+"/", s.previewToken, "", "")
	}},
	{"idem-first", http.StatusCreated, func(s *inproc, i int) *http.Request {
		return inprocReq(http.MethodPost, "/api/v1/echo", s.userToken, "first-"+strconv.Itoa(i), string(echoBody))
	}},
	{"idem-replay", http.StatusCreated, func(s *inproc, _ int) *http.Request {
		return inprocReq(http.MethodPost, "/api/v1/echo", s.userToken, inprocReplayKey, string(echoBody))
	}},
	{"quota", http.StatusCreated, func(s *inproc, _ int) *http.Request {
		return inprocReq(http.MethodPost, "/api/v1/systems/"+bareSystem+"/snapshots", s.userToken, "", "")
	}},
	{"flags", http.StatusOK, func(s *inproc, _ int) *http.Request {
		return inprocReq(http.MethodGet, "/api/v1/feature-flags", s.userToken, "", "")
	}},
}

// newInproc builds the chain and the fixture; Close stops the chain.
func newInproc(ctx context.Context, secret []byte) (*inproc, error) {
	c, err := newMemoryChain(ctx, secret)
	if err != nil {
		return nil, err
	}
	s := &inproc{chain: c}
	chain := c.Handler()
	s.handlers = []namedHandler{{"bare", bareHandler()}, {"memory", chain}}
	if s.userToken, err = mintHubToken(secret, "loaduser", bareTenant, false, time.Hour); err != nil {
		_ = s.Close(ctx)
		return nil, err
	}
	rr := httptest.NewRecorder()
	chain.ServeHTTP(rr, inprocReq(http.MethodPost, "/api/v1/previews", s.userToken, "", `{"system_id":"`+bareSystem+`"}`))
	var pv struct {
		ID    string `json:"preview_id"`
		Token string `json:"token"`
	}
	if err := json.Unmarshal(rr.Body.Bytes(), &pv); err != nil || rr.Code != http.StatusCreated {
		_ = s.Close(ctx)
		return nil, fmt.Errorf("in-process: create preview: %d %s", rr.Code, rr.Body)
	}
	s.previewID, s.previewToken = pv.ID, pv.Token
	for _, nh := range s.handlers {
		rr := httptest.NewRecorder()
		nh.h.ServeHTTP(rr, inprocReq(http.MethodPost, "/api/v1/echo", s.userToken, inprocReplayKey, string(echoBody)))
		if rr.Code != http.StatusCreated {
			_ = s.Close(ctx)
			return nil, fmt.Errorf("in-process %s: first echo: %d", nh.name, rr.Code)
		}
	}
	return s, nil
}

// Close stops the chain's background work.
func (s *inproc) Close(ctx context.Context) error { return s.chain.Close(ctx) }

// serve sends one request of sc (the i-th) to h and checks the status.
func (s *inproc) serve(h http.Handler, sc inprocScenario, i int) error {
	rr := httptest.NewRecorder()
	h.ServeHTTP(rr, sc.req(s, i))
	if rr.Code != sc.status {
		return fmt.Errorf("%s: status %d, want %d: %.200s", sc.name, rr.Code, sc.status, rr.Body)
	}
	return nil
}

func inprocReq(method, path, token, key, body string) *http.Request {
	var r *http.Request
	if body != "" {
		r = httptest.NewRequest(method, path, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
	} else {
		r = httptest.NewRequest(method, path, nil)
	}
	r.Header.Set("Authorization", "Bearer "+token)
	if key != "" {
		r.Header.Set("Idempotency-Key", key)
	}
	return r
}

// Cost is what one in-process request costs on one side.
type Cost struct {
	AllocsPerReq float64 `json:"allocs_per_req"`
	BytesPerReq  float64 `json:"bytes_per_req"`
	MicrosPerReq float64 `json:"us_per_req"`
}

// AllocRow is one scenario in-process: memory chain against bare.
type AllocRow struct {
	Scenario string `json:"scenario"`
	Bare     Cost   `json:"bare"`
	Chain    Cost   `json:"memory_chain"`
	// Extra is chain allocations − bare allocations per request.
	Extra float64 `json:"extra_allocs"`
	// ExtraOK is Extra ≤ the goal (bare + 40).
	ExtraOK bool `json:"extra_ok"`
}

// allocGoal is the goal: at most bare + 40 allocations a request.
const allocGoal = 40

// measureAllocs serves n requests of every scenario on each side after a
// warm-up and reads runtime.MemStats around them (the load generator's
// own HTTP load has ended; only the chain's background loops run).
func measureAllocs(ctx context.Context, secret []byte, scs []scenario, n int) ([]AllocRow, error) {
	s, err := newInproc(ctx, secret)
	if err != nil {
		return nil, err
	}
	defer func() { _ = s.Close(context.Background()) }()
	var rows []AllocRow
	seq := 0
	for _, sc := range inprocScenarios {
		if !hasScenario(scs, sc.name) {
			continue
		}
		row := AllocRow{Scenario: sc.name}
		for _, nh := range s.handlers {
			cost, err := s.cost(nh.h, sc, n, &seq)
			if err != nil {
				return rows, fmt.Errorf("in-process %s: %w", nh.name, err)
			}
			if nh.name == "bare" {
				row.Bare = cost
			} else {
				row.Chain = cost
			}
		}
		row.Extra = row.Chain.AllocsPerReq - row.Bare.AllocsPerReq
		row.ExtraOK = row.Extra <= allocGoal
		rows = append(rows, row)
	}
	return rows, nil
}

func (s *inproc) cost(h http.Handler, sc inprocScenario, n int, seq *int) (Cost, error) {
	for range min(n, 100) { // warm-up: pools, caches, lazily built state
		*seq++
		if err := s.serve(h, sc, *seq); err != nil {
			return Cost{}, err
		}
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	for range n {
		*seq++
		if err := s.serve(h, sc, *seq); err != nil {
			return Cost{}, err
		}
	}
	elapsed := time.Since(start)
	runtime.ReadMemStats(&after)
	f := float64(n)
	return Cost{AllocsPerReq: float64(after.Mallocs-before.Mallocs) / f, BytesPerReq: float64(after.TotalAlloc-before.TotalAlloc) / f,
		MicrosPerReq: float64(elapsed.Microseconds()) / f}, nil
}

func hasScenario(scs []scenario, name string) bool {
	for _, sc := range scs {
		if sc.Name == name {
			return true
		}
	}
	return false
}
