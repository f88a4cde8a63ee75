package main

// The multi-process soak: four hub binaries share one SQLite file, then
// one Redis, then one Postgres schema (when POSTGRES_URL is set), under concurrent load for a bounded time; invariants are
// sampled during the run and checked at the end. See docs/reliability.md.
//
//	go test ./examples/hub -run TestSoak -v                      # CI: 6s per mode
//	go test ./examples/hub -run TestSoak -v -soak=5m -timeout 30m  # long run
//	HUB_SOAK_DURATION=60s go test ./examples/hub -run TestSoak -v

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var soakFlag = flag.Duration("soak", 0, "load duration of each TestSoak mode (default 6s; HUB_SOAK_DURATION also sets it)")

// soakDuration is the load time of one soak mode: -soak, else
// HUB_SOAK_DURATION, else a CI-sized 6s.
func soakDuration(t *testing.T) time.Duration {
	t.Helper()
	if *soakFlag > 0 {
		return *soakFlag
	}
	if v := os.Getenv("HUB_SOAK_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		require.NoError(t, err, "HUB_SOAK_DURATION")
		require.Positive(t, d, "HUB_SOAK_DURATION")
		return d
	}
	return 6 * time.Second
}

const (
	soakProcs        = 4
	soakPreviewLimit = 3
	soakBudgetUSD    = 0.25
)

// documented503 are the reasons of the 503 answers the kit documents for a
// backend that is down or locked (fail closed). Any other 5xx is a bug.
var documented503 = []string{
	"idempotency_store_unavailable", "quota_store_unavailable", "db_unavailable",
	"flags_unavailable", "redis_unavailable",
}

// hubClient sends requests for worker goroutines: it never fails the test
// itself, it reports what happened.
type hubClient struct {
	hc *http.Client
}

func newHubClient(t *testing.T) *hubClient {
	tr := &http.Transport{MaxIdleConnsPerHost: 32, DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &hubClient{hc: &http.Client{Transport: tr, Timeout: 20 * time.Second}}
}

// result is one response (or transport error).
type result struct {
	status int
	header http.Header
	body   []byte
	err    error
	dur    time.Duration
}

func (r result) replay() bool { return r.header.Get("Idempotent-Replay") == "true" }

// json decodes the body as an object (nil when it is not one).
func (r result) json() map[string]any {
	var m map[string]any
	_ = json.Unmarshal(r.body, &m)
	return m
}

func (r result) str(field string) string {
	s, _ := r.json()[field].(string)
	return s
}

func (r result) String() string {
	if r.err != nil {
		return "error: " + r.err.Error()
	}
	b := r.body
	if len(b) > 300 {
		b = b[:300]
	}
	return fmt.Sprintf("%d %s", r.status, b)
}

// do sends one request; hdr is header name/value pairs.
func (c *hubClient) do(ctx context.Context, method, url, token, body string, hdr ...string) result {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return result{err: err}
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	start := time.Now()
	resp, err := c.hc.Do(req)
	if err != nil {
		return result{err: err, dur: time.Since(start)}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return result{status: resp.StatusCode, header: resp.Header, body: b, err: err, dur: time.Since(start)}
}

// metric returns the value of an unlabelled metric from GET /metrics.
func (c *hubClient) metric(addr, name string) (float64, error) {
	r := c.do(context.Background(), "GET", "http://"+addr+"/metrics", "", "")
	if r.err != nil || r.status != 200 {
		return 0, fmt.Errorf("GET /metrics: %v", r)
	}
	for line := range strings.SplitSeq(string(r.body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, fmt.Errorf("metric %s not found", name)
}

// loadStats classifies every response of a run.
type loadStats struct {
	mu         sync.Mutex
	counts     map[string]int // "POST /api/v1/echo 201"
	fail503    map[string]int // reason of each documented 503
	unexpected []string
	lat        []time.Duration
}

func newLoadStats() *loadStats {
	return &loadStats{counts: map[string]int{}, fail503: map[string]int{}}
}

// record counts r under route; a transport error, an undocumented 5xx or a
// status outside expected is unexpected.
func (s *loadStats) record(route string, r result, expected ...int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lat = append(s.lat, r.dur)
	bad := func(why string) {
		if len(s.unexpected) < 20 {
			s.unexpected = append(s.unexpected, fmt.Sprintf("%s: %s: %v", route, why, r))
		}
		s.counts["unexpected"]++
	}
	if r.err != nil {
		bad("transport")
		return
	}
	s.counts[fmt.Sprintf("%s %d", route, r.status)]++
	if r.status >= 500 {
		reason := r.str("reason")
		if r.status == http.StatusServiceUnavailable && r.header.Get("Content-Type") == "application/problem+json" && slices.Contains(documented503, reason) {
			s.fail503[reason]++
			return
		}
		bad("undocumented 5xx")
		return
	}
	if !slices.Contains(expected, r.status) {
		bad("unexpected status")
	}
}

func (s *loadStats) total() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.lat)
}

// percentile of the recorded latencies (p in 0..100).
func (s *loadStats) percentile(p float64) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.lat) == 0 {
		return 0
	}
	l := slices.Clone(s.lat)
	slices.Sort(l)
	return l[min(len(l)-1, int(math.Ceil(p/100*float64(len(l))))-1)]
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// testTokens mints hub tokens with testAuthSecret, the secret the soak
// and fault tests give every hub process.
func testToken(t *testing.T, sub, tenant string, isAdmin bool) string {
	t.Helper()
	var roles []string
	if isAdmin {
		roles = []string{"admin"}
	}
	au := &authenticator{secret: []byte(testAuthSecret), now: time.Now}
	tok, err := au.mint(sub, tenant, roles, 2*time.Hour)
	require.NoError(t, err)
	return tok
}

func usd2micros(v float64) int64 { return int64(math.Round(v * 1e6)) }

// sseClient holds one SSE connection to a hub and counts its events.
type sseClient struct {
	mu     sync.Mutex
	events map[string]int
	err    error // why the stream ended
	done   chan struct{}
}

// openSSE connects to the hub's event stream with token and reads it in a
// goroutine until ctx ends or the connection drops. It returns once the
// hello event arrived.
func openSSE(t *testing.T, ctx context.Context, c *hubClient, addr, token string) *sseClient {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/api/v1/streams/events?access_token="+token, nil)
	require.NoError(t, err)
	hc := &http.Client{Transport: c.hc.Transport} // no overall timeout on a stream
	resp, err := hc.Do(req)
	require.NoError(t, err)
	require.Equal(t, 200, resp.StatusCode)
	s := &sseClient{events: map[string]int{}, done: make(chan struct{})}
	hello := make(chan struct{})
	go func() {
		defer close(s.done)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			if ev, ok := strings.CutPrefix(sc.Text(), "event: "); ok {
				s.mu.Lock()
				s.events[ev]++
				s.mu.Unlock()
				if ev == "hello" {
					close(hello)
				}
			}
		}
		s.mu.Lock()
		s.err = sc.Err()
		if s.err == nil {
			s.err = io.EOF
		}
		s.mu.Unlock()
	}()
	select {
	case <-hello:
	case <-s.done:
		t.Fatalf("stream on %s ended before hello: %v", addr, s.err)
	case <-time.After(10 * time.Second):
		t.Fatalf("no hello on the stream of %s", addr)
	}
	return s
}

func (s *sseClient) count(ev string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.events[ev]
}

func TestSoakMultiProcess(t *testing.T) {
	d := soakDuration(t)
	for _, mode := range []string{"sqlite", "redis", "postgres"} {
		t.Run(mode, func(t *testing.T) { runSoak(t, mode, d) })
	}
}

// previewAttempt is one POST /api/v1/previews sent to two hubs at once
// with the same Idempotency-Key.
type previewAttempt struct {
	key     string
	results []result
}

func runSoak(t *testing.T, mode string, d time.Duration) {
	dir := t.TempDir()
	sharedDB := filepath.Join(dir, "shared.db")
	env := []string{
		"HUB_AUTH_SECRET=" + testAuthSecret,
		"DEFAULT_ACTIVE_PREVIEWS_LIMIT=" + strconv.Itoa(soakPreviewLimit),
		"DEFAULT_LLM_MONTHLY_BUDGET_USD=" + strconv.FormatFloat(soakBudgetUSD, 'f', -1, 64),
		"HUB_STREAM_HEARTBEAT=500ms",
		"IDEMPOTENCY_LOCK_TIMEOUT=" + soakLock.String(),
	}
	if mode == "redis" {
		srv := testRedis(t)
		env = append(env, "REDIS_URL="+srv.URL, "HUB_REDIS_PREFIX="+srv.Prefix)
		t.Logf("redis: real server %v", srv.Mini == nil)
	}
	var pg *testPostgresDB
	if mode == "postgres" {
		pg = testPostgres(t)
	}
	dbURL := func(path string) string {
		if pg != nil {
			return pg.URL
		}
		return "sqlite:///" + path
	}
	hubs := make([]*hubProc, soakProcs)
	for i := range hubs {
		// SQLite mode: one shared file. Redis mode: every store is in
		// Redis; each process keeps its preview records in its own file.
		db := sharedDB
		if mode == "redis" {
			db = filepath.Join(dir, fmt.Sprintf("hub%d.db", i))
		}
		hubs[i] = startHub(t, append(slices.Clone(env), "DATABASE_URL="+dbURL(db))...)
	}
	slowDB := sharedDB
	if mode == "redis" {
		slowDB = filepath.Join(dir, "slow.db")
	}
	slow := startHub(t, append(slices.Clone(env), "DATABASE_URL="+dbURL(slowDB), "HUB_ECHO_DELAY="+soakSlowEcho.String())...)
	url := func(i int, path string) string { return "http://" + hubs[i].addr + path }
	other := func(i int) int { return (i + 1 + mrand.IntN(soakProcs-1)) % soakProcs }

	sfx := randHex(4)
	tenants := []string{"soak-a-" + sfx, "soak-b-" + sfx}
	users := map[string]string{}
	for _, tn := range tenants {
		users[tn] = testToken(t, "user-"+sfx, tn, false)
	}
	adminUser := "soak-admin-" + sfx
	adminTok := testToken(t, adminUser, tenants[0], true)

	c := newHubClient(t)
	stats := newLoadStats()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	streamCtx, stopStreams := context.WithCancel(context.Background())
	defer stopStreams()
	streams := make([]*sseClient, soakProcs)
	for i := range hubs {
		streams[i] = openSSE(t, streamCtx, c, hubs[i].addr, users[tenants[0]])
	}
	var sqlDB *sqlx.DB // the shared database, for the sampler
	switch mode {
	case "sqlite":
		sqlDB = openTestDB(t, sharedDB)
	case "postgres":
		sqlDB = pg.DB
	}

	// Requests are not cut by the end of the run (a cancelled request may
	// still have run on the server): ctx only stops the loops.
	bg := context.Background()
	pace := func() { time.Sleep(time.Duration(8+mrand.IntN(5)) * time.Millisecond) }
	var wg sync.WaitGroup
	worker := func(fn func()) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				fn()
				pace()
			}
		}()
	}

	// Echo with Idempotency-Key: each new key goes to two hubs at once;
	// a third of the keys are sent again later (replay).
	var echoMu sync.Mutex
	echoIDs := map[string]map[string]bool{} // key -> ids seen in 201s
	var echoKeys []string
	recordEcho := func(key string, r result) {
		stats.record("POST /api/v1/echo", r, 201, 409)
		if r.status == 201 {
			echoMu.Lock()
			if echoIDs[key] == nil {
				echoIDs[key] = map[string]bool{}
			}
			echoIDs[key][r.str("id")] = true
			echoMu.Unlock()
		}
	}
	for range 2 {
		worker(func() {
			tn := tenants[mrand.IntN(len(tenants))]
			key := "echo-" + randHex(8)
			body := fmt.Sprintf(`{"tenant":%q,"key":%q}`, tn, key)
			if mrand.IntN(3) == 0 {
				echoMu.Lock()
				if len(echoKeys) > 0 {
					key = echoKeys[mrand.IntN(len(echoKeys))]
					body = `{"key":"` + key + `"}`
					tn = tenants[0]
				}
				echoMu.Unlock()
				recordEcho(key, c.do(bg, "POST", url(mrand.IntN(soakProcs), "/api/v1/echo"), users[tn], body, "Idempotency-Key", key))
				return
			}
			if tn == tenants[0] {
				body = `{"key":"` + key + `"}`
				echoMu.Lock()
				echoKeys = append(echoKeys, key)
				echoMu.Unlock()
			}
			i := mrand.IntN(soakProcs)
			var pair [2]result
			var pwg sync.WaitGroup
			for j, h := range []int{i, other(i)} {
				pwg.Go(func() { pair[j] = c.do(bg, "POST", url(h, "/api/v1/echo"), users[tn], body, "Idempotency-Key", key) })
			}
			pwg.Wait()
			for _, r := range pair {
				recordEcho(key, r)
			}
		})
	}

	// Slow echoes on the fifth process, retried on the others meanwhile.
	var slowRounds []slowRound
	wg.Add(1)
	go func() {
		defer wg.Done()
		slowRounds = slowEchoes(ctx, c, slow, hubs, users[tenants[1]], recordEcho)
	}()

	// Previews per tenant: create (same key to two hubs at once), delete,
	// and a snapshot now and then.
	live := make([]map[string]int, len(tenants)) // preview id -> hub holding its record
	var attemptsMu sync.Mutex
	var attempts []previewAttempt
	var created [2]atomic.Int64
	for ti, tn := range tenants {
		live[ti] = map[string]int{}
		worker(func() {
			tok := users[tn]
			switch n := mrand.IntN(10); {
			case n == 0:
				r := c.do(bg, "POST", url(mrand.IntN(soakProcs), "/api/v1/systems/sys-1/snapshots"), tok, "")
				stats.record("POST snapshots", r, 201, 429)
			case n < 5 && len(live[ti]) > 0:
				var id string
				var h int
				for id, h = range live[ti] {
					break
				}
				if mode != "redis" { // the preview records are shared
					h = mrand.IntN(soakProcs)
				}
				r := c.do(bg, "DELETE", url(h, "/api/v1/previews/"+id), tok, "")
				stats.record("DELETE /api/v1/previews/{id}", r, 204)
				if r.status == 204 {
					delete(live[ti], id)
				}
			default:
				key := "pv-" + randHex(8)
				i := mrand.IntN(soakProcs)
				hs := []int{i, other(i)}
				var pair [2]result
				var pwg sync.WaitGroup
				for j, h := range hs {
					pwg.Go(func() {
						pair[j] = c.do(bg, "POST", url(h, "/api/v1/previews"), tok, `{"system_id":"sys-1"}`, "Idempotency-Key", key)
					})
				}
				pwg.Wait()
				for j, r := range pair {
					stats.record("POST /api/v1/previews", r, 201, 429, 409)
					if r.status == 201 && !r.replay() {
						live[ti][r.str("preview_id")] = hs[j]
						created[ti].Add(1)
					}
				}
				// A late retry of the same key must replay the outcome.
				if mrand.IntN(4) == 0 {
					r := c.do(bg, "POST", url(mrand.IntN(soakProcs), "/api/v1/previews"), tok, `{"system_id":"sys-1"}`, "Idempotency-Key", key)
					stats.record("POST /api/v1/previews", r, 201, 429, 409)
					pair := append(pair[:], r)
					attemptsMu.Lock()
					attempts = append(attempts, previewAttempt{key: key, results: pair})
					attemptsMu.Unlock()
					return
				}
				attemptsMu.Lock()
				attempts = append(attempts, previewAttempt{key: key, results: pair[:]})
				attemptsMu.Unlock()
			}
		})
	}

	// LLM completions against a small budget: 402 once it is spent.
	var spentMicros [2]atomic.Int64
	for ti, tn := range tenants {
		worker(func() {
			prompt := strings.Repeat("p", 10+mrand.IntN(50))
			r := c.do(bg, "POST", url(mrand.IntN(soakProcs), "/api/v1/llm/completions"), users[tn], fmt.Sprintf(`{"prompt":%q,"max_cost_usd":0.01}`, prompt))
			stats.record("POST /api/v1/llm/completions", r, 200, 402)
			if r.status == 200 {
				cost, _ := r.json()["cost_usd"].(float64)
				spentMicros[ti].Add(usd2micros(cost))
			}
		})
	}

	// The admin raises each tenant's LLM budget by $0.05 every 2s, so the
	// budget check stays at its edge through a long run. budgetCap is the
	// highest budget that may be in effect: raised before the update is
	// sent, so a sample read after it can be compared with it.
	var budgetCap [2]atomic.Int64
	var budgetUpdates [2]atomic.Int64
	for ti := range tenants {
		budgetCap[ti].Store(usd2micros(soakBudgetUSD))
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(2 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			for ti, tn := range tenants {
				next := budgetCap[ti].Load() + 50_000
				budgetCap[ti].Store(next)
				body := fmt.Sprintf(`{"llm_monthly_budget_usd":%s,"reason":"soak raise"}`, strconv.FormatFloat(float64(next)/1e6, 'f', -1, 64))
				r := c.do(bg, "POST", url(mrand.IntN(soakProcs), "/api/v1/tenancy/quotas/"+tn+"/update"), adminTok, body)
				stats.record("POST quotas update", r, 200)
				if r.status == 200 {
					budgetUpdates[ti].Add(1)
				}
			}
		}
	}()

	// Flag toggles by the admin (tenant overrides) and flag reads.
	var toggles atomic.Int64
	var toggleN atomic.Int64
	worker(func() {
		n := toggleN.Add(1)
		if n%4 == 0 {
			r := c.do(bg, "GET", url(mrand.IntN(soakProcs), "/api/v1/feature-flags"), users[tenants[1]], "")
			stats.record("GET /api/v1/feature-flags", r, 200)
			return
		}
		body := fmt.Sprintf(`{"enabled":%v,"tenant_id":%q,"reason":"soak %d"}`, (n/2)%2 == 0, tenants[n%2], n)
		r := c.do(bg, "POST", url(mrand.IntN(soakProcs), "/api/v1/feature-flags/llm.streaming/toggle"), adminTok, body)
		stats.record("POST toggle", r, 200)
		if r.status == 200 {
			toggles.Add(1)
		}
	})

	// The sampler: quotas never above their limits at any sampled moment.
	var samples atomic.Int64
	var maxActive, maxMoney atomic.Int64
	var violations []string
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			for ti, tn := range tenants {
				r := c.do(bg, "GET", url(mrand.IntN(soakProcs), "/api/v1/tenancy/quotas/"+tn), users[tn], "")
				stats.record("GET quotas", r, 200)
				if r.status != 200 {
					continue
				}
				var q struct {
					Usage struct {
						Active   int64   `json:"active_previews"`
						Spent    float64 `json:"llm_spent_usd"`
						Reserved float64 `json:"llm_reserved_usd"`
					} `json:"usage"`
				}
				_ = json.Unmarshal(r.body, &q)
				money := usd2micros(q.Usage.Spent) + usd2micros(q.Usage.Reserved)
				budget := budgetCap[ti].Load()
				samples.Add(1)
				if v := q.Usage.Active; v > maxActive.Load() {
					maxActive.Store(v)
				}
				if money > maxMoney.Load() {
					maxMoney.Store(money)
				}
				if q.Usage.Active > soakPreviewLimit || money > budget {
					violations = append(violations, string(r.body))
				}
				if sqlDB != nil {
					var rows int64
					if err := sqlDB.Get(&rows, sqlDB.Rebind(`SELECT count(*) FROM hub_previews WHERE tenant_id = ?`), tn); err == nil && rows > soakPreviewLimit {
						violations = append(violations, fmt.Sprintf("%s: %d preview records", tn, rows))
					}
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()

	start := time.Now()
	wg.Wait()
	elapsed := time.Since(start)
	stopStreams()
	for _, s := range streams {
		<-s.done
	}

	// Invariants.
	assert.Empty(t, stats.unexpected, "unexpected answers (%d)", stats.counts["unexpected"])
	assert.Empty(t, violations, "a quota was above its limit at a sampled moment")
	assert.Positive(t, samples.Load())

	// Every idempotent echo key executed exactly once, slow ones included.
	checkSlowRounds(t, slowRounds)
	var executions float64
	for _, h := range append(slices.Clone(hubs), slow) {
		v, err := c.metric(h.addr, "hub_echo_executions_total")
		require.NoError(t, err)
		executions += v
	}
	echoMu.Lock()
	for key, ids := range echoIDs {
		assert.Len(t, ids, 1, "key %s answered with different echo ids: executed more than once", key)
	}
	assert.Equal(t, float64(len(echoIDs)), executions, "echo executions across the %d processes = keys that got a 201", soakProcs)
	echoMu.Unlock()

	// One preview per key: every 201 of a key carries the same preview id
	// and at most one of them is not a replay; once the pair sent together
	// has a 201, the later retry replays it. (A refusal may be followed by
	// a 201: the hub does not have to store 429s.)
	for _, at := range attempts {
		id, fresh := "", 0
		for _, r := range at.results {
			if r.status != 201 {
				continue
			}
			if !r.replay() {
				fresh++
			}
			if id == "" {
				id = r.str("preview_id")
			}
			assert.Equal(t, id, r.str("preview_id"), "preview key %s: %v", at.key, at.results)
		}
		assert.LessOrEqual(t, fresh, 1, "preview key %s created more than one preview: %v", at.key, at.results)
		if len(at.results) == 3 && (at.results[0].status == 201 || at.results[1].status == 201) {
			late := at.results[2]
			assert.True(t, late.status == 201 && late.replay(), "preview key %s: the retry after a 201 must replay it: %v", at.key, at.results)
		}
	}

	// Slots equal live previews; deleting them all frees every slot.
	for ti, tn := range tenants {
		code, q := getJSON(t, url(0, "/api/v1/tenancy/quotas/"+tn), users[tn])
		require.Equal(t, 200, code, "%v", q)
		usage := q["usage"].(map[string]any)
		assert.EqualValues(t, len(live[ti]), usage["active_previews"], "active slots = previews created and not deleted (%s)", tn)
		spent := usd2micros(usage["llm_spent_usd"].(float64))
		assert.Equal(t, spentMicros[ti].Load(), spent, "LLM spend = sum of the answered costs (%s)", tn)
		budget := usd2micros(q["limits"].(map[string]any)["llm_monthly_budget_usd"].(float64))
		assert.Equal(t, budgetCap[ti].Load(), budget, "the last raise is in effect (%s)", tn)
		assert.LessOrEqual(t, spent, budget, "LLM spend within the budget (%s)", tn)
		assert.Zero(t, usd2micros(usage["llm_reserved_usd"].(float64)), "no reservation left outstanding (%s)", tn)
		for id, h := range live[ti] {
			r := c.do(context.Background(), "DELETE", url(h, "/api/v1/previews/"+id), users[tn], "")
			assert.Equal(t, 204, r.status, "%v", r)
		}
		code, q = getJSON(t, url(soakProcs-1, "/api/v1/tenancy/quotas/"+tn), users[tn])
		require.Equal(t, 200, code, "%v", q)
		assert.EqualValues(t, 0, q["usage"].(map[string]any)["active_previews"], tn)
	}

	// Every quota change has its audit record.
	for ti, tn := range tenants {
		code, page := getJSON(t, url(1, "/api/v1/tenancy/audit?limit=1000&tenant_id="+tn), adminTok)
		require.Equal(t, 200, code, "%v", page)
		assert.EqualValues(t, budgetUpdates[ti].Load(), len(page["entries"].([]any)), "quota updates answered 200 = audit records (%s)", tn)
	}

	// Every successful flag change has its audit record.
	audited := 0
	cursor := ""
	for range 1000 {
		u := url(0, "/api/v1/feature-flags/audit?limit=1000&changed_by="+adminUser)
		if cursor != "" {
			u += "&cursor=" + cursor
		}
		code, page := getJSON(t, u, adminTok)
		require.Equal(t, 200, code, "%v", page)
		audited += len(page["entries"].([]any))
		next, _ := page["next_cursor"].(string)
		if next == "" {
			break
		}
		cursor = next
	}
	assert.EqualValues(t, toggles.Load(), audited, "flag toggles answered 200 = audit records")
	assert.Positive(t, toggles.Load())

	// Every stream stayed up through the run.
	for i, s := range streams {
		assert.Positive(t, s.count("heartbeat"), "stream on hub %d got heartbeats", i)
	}

	n := stats.total()
	t.Logf("soak %s: %d processes, %s, %d requests (%.0f/s), p50 %s, p99 %s; 503s %v; echo keys %d = executions %.0f; previews created %d+%d, max active sampled %d (limit %d) over %d samples; max LLM spent+reserved $%.6f (budget $%.2f, raised %d+%d times to $%.2f); toggles %d = audit %d; stream events on hub 0: %v",
		mode, soakProcs, elapsed.Round(time.Millisecond), n, float64(n)/elapsed.Seconds(),
		stats.percentile(50).Round(10*time.Microsecond), stats.percentile(99).Round(10*time.Microsecond),
		stats.fail503, len(echoIDs), executions, created[0].Load(), created[1].Load(), maxActive.Load(), soakPreviewLimit, samples.Load(),
		float64(maxMoney.Load())/1e6, soakBudgetUSD, budgetUpdates[0].Load(), budgetUpdates[1].Load(), float64(budgetCap[0].Load())/1e6, toggles.Load(), audited, streams[0].events)
	t.Logf("soak %s: statuses %v", mode, stats.counts)
	for _, rd := range slowRounds {
		t.Logf("soak %s: slow echo %s ran %s (lock timeout %s); %d retries on the other processes meanwhile, the last 409 %s after it was sent",
			mode, rd.key, rd.first.dur.Round(time.Millisecond), soakLock, len(rd.retries), rd.lastConflict.Round(time.Millisecond))
	}
	if t.Failed() {
		for i, h := range hubs {
			logs := h.logs()
			if len(logs) > 4000 {
				logs = logs[len(logs)-4000:]
			}
			t.Logf("hub %d log tail:\n%s", i, logs)
		}
	}
}
