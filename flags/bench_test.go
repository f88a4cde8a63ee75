package flags_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/systembuilderhub/hardening/flags"
)

var sink bool

// BenchmarkEvaluate compares a cached evaluation with the baseline the
// issue names: a plain map[string]bool lookup, measured in the same run.
// 50 registered flags, 100 tenant overrides on the evaluated flag.
func BenchmarkEvaluate(b *testing.B) {
	ctx := context.Background()
	setup := func(b *testing.B, opts ...flags.Option) *flags.Client {
		c, err := flags.New(flags.NewMemoryStore(), opts...)
		if err != nil {
			b.Fatal(err)
		}
		for i := range 50 {
			if err := c.Register(flags.Flag{Name: fmt.Sprintf("feature.f%02d", i)}); err != nil {
				b.Fatal(err)
			}
		}
		if err := c.Start(ctx); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = c.Close(ctx) })
		if _, err := c.Toggle(ctx, "feature.f07", true, flags.Change{By: "bench"}); err != nil {
			b.Fatal(err)
		}
		for i := range 100 {
			if _, err := c.Toggle(ctx, "feature.f07", i%2 == 0, flags.Change{By: "bench", TenantID: fmt.Sprintf("tenant-%03d", i)}); err != nil {
				b.Fatal(err)
			}
		}
		return c
	}

	b.Run("baseline_map", func(b *testing.B) {
		m := make(map[string]bool, 50)
		for i := range 50 {
			m[fmt.Sprintf("feature.f%02d", i)] = i%2 == 0
		}
		b.ReportAllocs()
		for b.Loop() {
			sink = m["feature.f07"]
		}
	})
	b.Run("override", func(b *testing.B) {
		c := setup(b)
		b.ReportAllocs()
		for b.Loop() {
			sink = c.Enabled("feature.f07", "tenant-042", false)
		}
	})
	b.Run("handle_override", func(b *testing.B) {
		c := setup(b)
		h, err := c.Handle("feature.f07")
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			sink = h.Enabled("tenant-042")
		}
	})
	b.Run("global", func(b *testing.B) {
		c := setup(b)
		b.ReportAllocs()
		for b.Loop() {
			sink = c.Enabled("feature.f07", "tenant-without-override", false)
		}
	})
	b.Run("unknown", func(b *testing.B) {
		c := setup(b)
		b.ReportAllocs()
		for b.Loop() {
			sink = c.Enabled("feature.nope", "tenant-042", false)
		}
	})
	b.Run("override_with_metrics", func(b *testing.B) {
		c := setup(b, flags.WithRegisterer(prometheus.NewRegistry()))
		b.ReportAllocs()
		for b.Loop() {
			sink = c.Enabled("feature.f07", "tenant-042", false)
		}
	})
	b.Run("override_parallel", func(b *testing.B) {
		c := setup(b)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			var s bool
			for pb.Next() {
				s = c.Enabled("feature.f07", "tenant-042", false)
			}
			sink = s
		})
	})
}

// TestEvaluateDoesNotAllocate holds the 0 allocs/op target in the unit
// tests, not only in the benchmark.
func TestEvaluateDoesNotAllocate(t *testing.T) {
	ctx := context.Background()
	c, err := flags.New(flags.NewMemoryStore(), flags.WithFlags(streaming), flags.WithRegisterer(prometheus.NewRegistry()))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	if _, err := c.Toggle(ctx, "llm.streaming", true, flags.Change{By: "t", TenantID: "acme"}); err != nil {
		t.Fatal(err)
	}
	for _, tenant := range []string{"acme", "globex", ""} {
		if n := testing.AllocsPerRun(100, func() { sink = c.Enabled("llm.streaming", tenant, false) }); n != 0 {
			t.Errorf("tenant %q: %v allocs per evaluation", tenant, n)
		}
	}
	h, err := c.Handle("llm.streaming")
	if err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() { sink = h.Enabled("acme") }); n != 0 {
		t.Errorf("handle: %v allocs per evaluation", n)
	}
	if n := testing.AllocsPerRun(100, func() { sink = c.Enabled("unknown", "acme", false) }); n != 0 {
		t.Errorf("unknown flag: %v allocs per evaluation", n)
	}
}

// BenchmarkEvaluateVsMap interleaves blocks of plain map lookups and cached
// evaluations (tenant override hit) in one loop, so both see the same CPU
// conditions on a shared machine, and reports the ratio of their costs:
// eval/map (by name, tenant override hit), handle/map (through a Handle),
// global/map (by name, tenant without override on a flag that has some).
func BenchmarkEvaluateVsMap(b *testing.B) {
	ctx := context.Background()
	c, err := flags.New(flags.NewMemoryStore())
	if err != nil {
		b.Fatal(err)
	}
	m := make(map[string]bool, 50)
	for i := range 50 {
		name := fmt.Sprintf("feature.f%02d", i)
		m[name] = i%2 == 0
		if err := c.Register(flags.Flag{Name: name}); err != nil {
			b.Fatal(err)
		}
	}
	for i := range 100 {
		if _, err := c.Toggle(ctx, "feature.f07", i%2 == 0, flags.Change{By: "bench", TenantID: fmt.Sprintf("tenant-%03d", i)}); err != nil {
			b.Fatal(err)
		}
	}
	h, err := c.Handle("feature.f07")
	if err != nil {
		b.Fatal(err)
	}
	const block = 4096
	var mapNS, evalNS, handleNS, globalNS time.Duration
	b.ReportAllocs()
	for b.Loop() {
		t0 := time.Now()
		for range block {
			sink = m["feature.f07"]
		}
		t1 := time.Now()
		for range block {
			sink = c.Enabled("feature.f07", "tenant-042", false)
		}
		t2 := time.Now()
		for range block {
			sink = h.Enabled("tenant-042")
		}
		t3 := time.Now()
		for range block {
			sink = c.Enabled("feature.f07", "tenant-without-override", false)
		}
		t4 := time.Now()
		globalNS += t4.Sub(t3)
		mapNS += t1.Sub(t0)
		evalNS += t2.Sub(t1)
		handleNS += t3.Sub(t2)
	}
	n := float64(b.N) * block
	b.ReportMetric(float64(mapNS.Nanoseconds())/n, "map-ns/lookup")
	b.ReportMetric(float64(evalNS.Nanoseconds())/n, "eval-ns/lookup")
	b.ReportMetric(float64(evalNS)/float64(mapNS), "eval/map")
	b.ReportMetric(float64(handleNS)/float64(mapNS), "handle/map")
	b.ReportMetric(float64(globalNS)/float64(mapNS), "global/map")
}
