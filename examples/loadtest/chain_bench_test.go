package main

import (
	"context"
	"testing"
)

// BenchmarkRequest serves each scenario in-process (no network) through
// the bare handler and through the memory chain, so -benchmem shows what
// the middleware adds per request in allocations (the same requests go run
// ./examples/loadtest counts in its allocation table):
//
//	go test ./examples/loadtest -run '^$' -bench Request -benchmem
func BenchmarkRequest(b *testing.B) {
	s, err := newInproc(context.Background(), []byte("loadtest-bench-secret-0123456789"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close(context.Background()) })
	seq := 0 // across b.Run's repeated calls, so idem-first keys stay fresh
	for _, sc := range inprocScenarios {
		for _, nh := range s.handlers {
			b.Run(sc.name+"/"+nh.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					seq++
					if err := s.serve(nh.h, sc, seq); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
