package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

func mark(ok bool) string {
	if ok {
		return "yes"
	}
	return "**no**"
}

// storeTitles and scenarioTitles label the summary table as the issue does.
var (
	storeTitles    = map[string]string{"memory": "memory", "sqlite": "SQLite", "redis": "Redis", "postgres": "Postgres"}
	scenarioTitles = map[string]string{"preview": "preview GET", "idem-first": "idempotent POST, first",
		"idem-replay": "replay", "quota": "quota POST", "flags": "flags GET"}
)

// writeMarkdown prints the result as Markdown: the ratio summary, the full
// load table, the in-process allocations, the peer table and any notes.
func (r Result) writeMarkdown(w io.Writer) {
	fmt.Fprintf(w, "%s, %d CPUs, %d connections, %d rounds of %s per side, alternating.\n", r.GoVersion, r.NumCPU, r.Concurrency, r.Rounds, r.Duration)
	var rtts []string
	for _, k := range []string{"memory", "sqlite", "redis", "postgres"} {
		if v, ok := r.RTTMicros[k]; ok {
			rtts = append(rtts, fmt.Sprintf("%s %.0f µs", k, v))
		}
	}
	fmt.Fprintf(w, "Store round trip (median, one write): %s.\n", strings.Join(rtts, ", "))
	fmt.Fprintln(w, "chain = the hub binary (sqlite, redis) or the hub's middleware chain in-process on memory stores (memory) or the kit's Postgres stores (postgres); bare = the same handlers with no middleware.")
	fmt.Fprintln(w, "ratio = chain req/s ÷ bare req/s; p99 bound = 2 × bare p99 + the store round trip.")
	fmt.Fprintln(w)
	r.writeSummary(w)
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| store | scenario | chain req/s | bare req/s | ratio | target | chain p50 | chain p99 | bare p50 | bare p99 | p99 bound | p99 ok | errors |")
	fmt.Fprintln(w, "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|--:|")
	for _, x := range r.Rows {
		fmt.Fprintf(w, "| %s | %s | %.0f | %.0f | %.2f× | %s %.2f× | %s | %s | %s | %s | %s | %s | %d |\n",
			x.Store, x.Scenario, x.Chain.RPS, x.Bare.RPS, x.Ratio, map[bool]string{true: "≥", false: "**<**"}[x.ThroughputOK], x.Target,
			us(x.Chain.P50Micros), us(x.Chain.P99Micros), us(x.Bare.P50Micros), us(x.Bare.P99Micros), us(x.P99BoundMicros), mark(x.P99OK),
			x.Chain.Errors+x.Bare.Errors)
	}
	if len(r.Allocs) > 0 {
		fmt.Fprintln(w)
		r.writeAllocs(w)
	}
	if r.peersMarkdown != "" {
		fmt.Fprintln(w)
		fmt.Fprint(w, r.peersMarkdown)
	}
	if len(r.Notes) > 0 {
		fmt.Fprintln(w)
		for _, n := range r.Notes {
			fmt.Fprintln(w, n)
		}
	}
}

// writeSummary prints chain ÷ bare throughput, one row per store, one
// column per scenario; a ratio under the store's target is bold.
func (r Result) writeSummary(w io.Writer) { writeRatioSpread(w, []Result{r}) }

func title(m map[string]string, k string) string {
	if t, ok := m[k]; ok {
		return t
	}
	return k
}

// writeAllocs prints the in-process cost per request.
func (r Result) writeAllocs(w io.Writer) {
	fmt.Fprintf(w, "Per request in-process (httptest, no network; %d requests per cell after a warm-up; both sides include ~20 allocations of httptest):\n\n", r.AllocRequests)
	fmt.Fprintf(w, "| scenario | bare allocs | memory chain allocs | chain − bare | ≤ bare + %d | bare bytes | chain bytes | bare µs | chain µs |\n", allocGoal)
	fmt.Fprintln(w, "|---|--:|--:|--:|---|--:|--:|--:|--:|")
	for _, x := range r.Allocs {
		fmt.Fprintf(w, "| %s | %.0f | %.0f | %+.0f | %s | %.0f | %.0f | %.1f | %.1f |\n", x.Scenario, x.Bare.AllocsPerReq, x.Chain.AllocsPerReq,
			x.Extra, mark(x.ExtraOK), x.Bare.BytesPerReq, x.Chain.BytesPerReq, x.Bare.MicrosPerReq, x.Chain.MicrosPerReq)
	}
	fmt.Fprintln(w, "\nThe hub on SQLite and Redis: REDIS_URL=… go test ./examples/hub -run '^$' -bench HubRequest -benchmem")
}

func us(v float64) string {
	if v >= 10_000 {
		return fmt.Sprintf("%.1f ms", v/1e3)
	}
	return fmt.Sprintf("%.0f µs", v)
}

func (r Result) writeJSON(w io.Writer) {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(r)
}
