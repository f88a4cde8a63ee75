package ctxval

import (
	"context"
	"strings"
	"testing"
	"time"
)

type key struct{ string }

func TestWithFrom(t *testing.T) {
	k1, k2 := &key{"a"}, &key{"b"}
	parent, cancel := context.WithCancel(context.Background())
	ctx := With(With(parent, k1, "A", 1), k2, "B", "two")
	if p, ok := From[int](ctx, k1); !ok || *p != 1 {
		t.Fatalf("k1: %v %v", p, ok)
	}
	if p, ok := From[string](ctx, k2); !ok || *p != "two" {
		t.Fatalf("k2: %v %v", p, ok)
	}
	if _, ok := From[string](ctx, k1); ok {
		t.Fatal("wrong type reported present")
	}
	if _, ok := From[int](context.Background(), k1); ok {
		t.Fatal("absent value reported present")
	}
	var nilCtx context.Context
	if _, ok := From[int](nilCtx, k1); ok {
		t.Fatal("nil context")
	}
	if s := ctx.(interface{ String() string }).String(); !strings.HasSuffix(s, ".A.B") {
		t.Fatalf("String %q", s)
	}
	// Cancellation still flows through (and from) the carrying context.
	child, stop := context.WithTimeout(ctx, time.Hour)
	defer stop()
	cancel()
	select {
	case <-child.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("cancellation did not reach the child")
	}
	if got := testing.AllocsPerRun(100, func() { _, _ = From[int](ctx, k1) }); got != 0 {
		t.Fatalf("From allocates %v", got)
	}
}
