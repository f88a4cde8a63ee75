package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// The noise on a shared 2-core machine is larger than many of the effects
// measured, so figures are given as the median of several runs with their
// range. -spread reads the JSON of several runs (go run ./examples/loadtest
// -json > run1.json, ...) and prints every table that way:
//
//	go run ./examples/loadtest -spread run1.json run2.json run3.json

// peerRowJSON is the part of a peers row (examples/loadtest/peers) the
// spread tables read.
type peerRowJSON struct {
	Name     string  `json:"name"`
	Kit      string  `json:"kit"`
	Peer     string  `json:"peer"`
	Ratio    float64 `json:"ratio"`
	KitSide  sideOp  `json:"kit_side"`
	PeerSide sideOp  `json:"peer_side"`
}

type sideOp struct {
	NsPerOp     float64 `json:"ns_per_op"`
	AllocsPerOp float64 `json:"allocs_per_op"`
}

type peersJSON struct {
	Redis string        `json:"redis"`
	Rows  []peerRowJSON `json:"rows"`
}

// spreadMain reads the result files and prints the spread tables.
func spreadMain(w io.Writer, files []string) error {
	if len(files) == 0 {
		return fmt.Errorf("-spread needs the JSON files of one or more runs")
	}
	var runs []Result
	var peers []peersJSON
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		var r Result
		if err := json.Unmarshal(b, &r); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		runs = append(runs, r)
		if len(r.Peers) > 0 {
			var p peersJSON
			if err := json.Unmarshal(r.Peers, &p); err != nil {
				return fmt.Errorf("%s: peers: %w", f, err)
			}
			peers = append(peers, p)
		}
	}
	r0 := runs[0]
	fmt.Fprintf(w, "%d runs; each cell is the median (min–max) over the runs. %s, %d CPUs, %d connections, %d rounds of %s per side.\n\n",
		len(runs), r0.GoVersion, r0.NumCPU, r0.Concurrency, r0.Rounds, r0.Duration)
	writeRatioSpread(w, runs)
	fmt.Fprintln(w)
	writeAllocSpread(w, runs)
	if len(peers) > 0 {
		fmt.Fprintln(w)
		writePeerSpread(w, peers)
	}
	return nil
}

// spread formats the median and range of vs with f ("%.2f"); one value,
// or equal ends, print once.
func spread(vs []float64, f string) string {
	if len(vs) == 0 {
		return "–"
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	med, lo, hi := fmt.Sprintf(f, s[len(s)/2]), fmt.Sprintf(f, s[0]), fmt.Sprintf(f, s[len(s)-1])
	if lo == hi {
		return med
	}
	return med + " (" + lo + "–" + hi + ")"
}

func median(vs []float64) float64 {
	s := slices.Clone(vs)
	slices.Sort(s)
	return s[len(s)/2]
}

// ratioCell is the spread of ratios as "0.61× (0.58–0.86)", bold when
// the median is under goal.
func ratioCell(vs []float64, goal float64) string {
	if len(vs) == 0 {
		return "–"
	}
	cell := spread(vs, "%.2f")
	if i := strings.Index(cell, " ("); i >= 0 {
		cell = cell[:i] + "×" + cell[i:]
	} else {
		cell += "×"
	}
	if median(vs) < goal {
		cell = "**" + cell + "**"
	}
	return cell
}

func writeRatioSpread(w io.Writer, runs []Result) {
	ratios := map[[2]string][]float64{}
	var stores, scs []string
	for _, r := range runs {
		for _, x := range r.Rows {
			k := [2]string{x.Store, x.Scenario}
			ratios[k] = append(ratios[k], x.Ratio)
			if !slices.Contains(stores, x.Store) {
				stores = append(stores, x.Store)
			}
			if !slices.Contains(scs, x.Scenario) {
				scs = append(scs, x.Scenario)
			}
		}
	}
	fmt.Fprint(w, "| store |")
	for _, sc := range scs {
		fmt.Fprintf(w, " %s |", title(scenarioTitles, sc))
	}
	fmt.Fprintln(w, " target |")
	fmt.Fprintln(w, "|---|"+strings.Repeat("--:|", len(scs)+1))
	for _, st := range stores {
		fmt.Fprintf(w, "| %s |", title(storeTitles, st))
		for _, sc := range scs {
			fmt.Fprintf(w, " %s |", ratioCell(ratios[[2]string{st, sc}], targets[st]))
		}
		fmt.Fprintf(w, " ≥ %.2f× |\n", targets[st])
	}
}

// groupBy groups items by key, keys in order of first appearance.
func groupBy[T any](items []T, key func(T) string) ([]string, map[string][]T) {
	var keys []string
	by := map[string][]T{}
	for _, x := range items {
		k := key(x)
		if _, ok := by[k]; !ok {
			keys = append(keys, k)
		}
		by[k] = append(by[k], x)
	}
	return keys, by
}

// column is f of every item.
func column[T any](items []T, f func(T) float64) []float64 {
	vs := make([]float64, 0, len(items))
	for _, x := range items {
		vs = append(vs, f(x))
	}
	return vs
}

func writeAllocSpread(w io.Writer, runs []Result) {
	var all []AllocRow
	for _, r := range runs {
		all = append(all, r.Allocs...)
	}
	scs, by := groupBy(all, func(a AllocRow) string { return a.Scenario })
	if len(scs) == 0 {
		return
	}
	fmt.Fprintf(w, "| scenario | bare allocs | memory chain allocs | chain − bare (goal ≤ %d) | bare bytes | chain bytes | bare µs | chain µs |\n", allocGoal)
	fmt.Fprintln(w, "|---|--:|--:|--:|--:|--:|--:|--:|")
	for _, sc := range scs {
		col := func(f func(AllocRow) float64) []float64 { return column(by[sc], f) }
		extra := spread(col(func(a AllocRow) float64 { return a.Extra }), "%+.0f")
		if median(col(func(a AllocRow) float64 { return a.Extra })) > allocGoal {
			extra = "**" + extra + "**"
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", sc,
			spread(col(func(a AllocRow) float64 { return a.Bare.AllocsPerReq }), "%.0f"),
			spread(col(func(a AllocRow) float64 { return a.Chain.AllocsPerReq }), "%.0f"), extra,
			spread(col(func(a AllocRow) float64 { return a.Bare.BytesPerReq }), "%.0f"),
			spread(col(func(a AllocRow) float64 { return a.Chain.BytesPerReq }), "%.0f"),
			spread(col(func(a AllocRow) float64 { return a.Bare.MicrosPerReq }), "%.1f"),
			spread(col(func(a AllocRow) float64 { return a.Chain.MicrosPerReq }), "%.1f"))
	}
}

func writePeerSpread(w io.Writer, peers []peersJSON) {
	var all []peerRowJSON
	for _, p := range peers {
		all = append(all, p.Rows...)
	}
	names, by := groupBy(all, func(x peerRowJSON) string { return x.Name })
	fmt.Fprintf(w, "Peers (Redis pairs on %s); ratio = kit ops/s ÷ peer ops/s, goal ≥ 1.00×:\n\n", peers[0].Redis)
	fmt.Fprintln(w, "| pair | kit | peer | kit ns/op | peer ns/op | ratio | kit allocs/op | peer allocs/op |")
	fmt.Fprintln(w, "|---|---|---|--:|--:|--:|--:|--:|")
	for _, n := range names {
		col := func(f func(peerRowJSON) float64) []float64 { return column(by[n], f) }
		ratio := ratioCell(col(func(x peerRowJSON) float64 { return x.Ratio }), 1)
		x := by[n][0]
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", n, x.Kit, x.Peer,
			spread(col(func(x peerRowJSON) float64 { return x.KitSide.NsPerOp }), "%.0f"),
			spread(col(func(x peerRowJSON) float64 { return x.PeerSide.NsPerOp }), "%.0f"), ratio,
			spread(col(func(x peerRowJSON) float64 { return x.KitSide.AllocsPerOp }), "%.0f"),
			spread(col(func(x peerRowJSON) float64 { return x.PeerSide.AllocsPerOp }), "%.0f"))
	}
}
