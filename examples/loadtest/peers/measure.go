package main

import (
	"context"
	"runtime"
	"slices"
	"time"
)

// Timing is one side of a pair over one stretch of calls.
type Timing struct {
	Ops         int     `json:"ops"`
	NsPerOp     float64 `json:"ns_per_op"`
	AllocsPerOp float64 `json:"allocs_per_op"`
	BytesPerOp  float64 `json:"bytes_per_op"`
}

// timeOp calls o back to back for about d (at least once) and returns the
// mean cost of a call; allocations come from runtime.MemStats around the
// whole stretch, so they include anything other goroutines allocated
// meanwhile (little: no other work runs in this process).
func timeOp(ctx context.Context, o op, d time.Duration) (Timing, error) {
	const batch = 32
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	n := 0
	for n == 0 || time.Since(start) < d {
		for range batch {
			if err := o(ctx); err != nil {
				return Timing{}, err
			}
		}
		n += batch
	}
	elapsed := time.Since(start)
	runtime.ReadMemStats(&after)
	return Timing{Ops: n, NsPerOp: float64(elapsed.Nanoseconds()) / float64(n),
		AllocsPerOp: float64(after.Mallocs-before.Mallocs) / float64(n),
		BytesPerOp:  float64(after.TotalAlloc-before.TotalAlloc) / float64(n)}, nil
}

// Row is one pair measured over several alternating rounds.
type Row struct {
	Name string `json:"name"`
	Kit  string `json:"kit"`
	Peer string `json:"peer"`
	// KitSide and PeerSide are each side over all its rounds.
	KitSide  Timing `json:"kit_side"`
	PeerSide Timing `json:"peer_side"`
	// Ratio is kit ops/s ÷ peer ops/s over all rounds (= peer ns/op ÷ kit
	// ns/op): 1 or more means the kit is at least as fast.
	Ratio float64 `json:"ratio"`
	// RatioMin and RatioMax are the spread of the per-round ratios.
	RatioMin float64 `json:"ratio_min"`
	RatioMax float64 `json:"ratio_max"`
}

// measurePair warms both sides, then alternates them for rounds rounds of
// d each, swapping which goes first every round.
func measurePair(ctx context.Context, p pair, rounds int, d time.Duration) (Row, error) {
	row := Row{Name: p.Name, Kit: p.Kit, Peer: p.Peer}
	warm := min(d/4, 100*time.Millisecond)
	for _, o := range []op{p.kit, p.peer} {
		if _, err := timeOp(ctx, o, warm); err != nil {
			return row, err
		}
	}
	var kits, peers []Timing
	var ratios []float64
	for r := range rounds {
		var k, pe Timing
		var err error
		if r%2 == 0 {
			if k, err = timeOp(ctx, p.kit, d); err == nil {
				pe, err = timeOp(ctx, p.peer, d)
			}
		} else {
			if pe, err = timeOp(ctx, p.peer, d); err == nil {
				k, err = timeOp(ctx, p.kit, d)
			}
		}
		if err != nil {
			return row, err
		}
		kits, peers = append(kits, k), append(peers, pe)
		ratios = append(ratios, pe.NsPerOp/k.NsPerOp)
	}
	row.KitSide, row.PeerSide = total(kits), total(peers)
	row.Ratio = row.PeerSide.NsPerOp / row.KitSide.NsPerOp
	row.RatioMin, row.RatioMax = slices.Min(ratios), slices.Max(ratios)
	return row, nil
}

// total merges rounds into one Timing, each round weighted by its calls.
func total(ts []Timing) Timing {
	var out Timing
	var ns, allocs, bytes float64
	for _, t := range ts {
		out.Ops += t.Ops
		ns += t.NsPerOp * float64(t.Ops)
		allocs += t.AllocsPerOp * float64(t.Ops)
		bytes += t.BytesPerOp * float64(t.Ops)
	}
	if out.Ops > 0 {
		n := float64(out.Ops)
		out.NsPerOp, out.AllocsPerOp, out.BytesPerOp = ns/n, allocs/n, bytes/n
	}
	return out
}
