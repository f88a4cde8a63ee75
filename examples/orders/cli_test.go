package main

import (
	"bytes"
	"context"
	"flag"
	"log/slog"
	"strings"
	"testing"
)

// TestCLIHelp: "orders -h", "orders help" and "orders token -h" list both
// commands and every token flag, exit 0 and start nothing; an unknown
// command exits 2.
func TestCLIHelp(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"--help"}, {"help"}, {"token", "-h"}, {"serve", "-h"}} {
		var out, errb bytes.Buffer
		code := run(context.Background(), args, func(string) string { return "" }, slog.New(slog.DiscardHandler), &out, &errb)
		if code != 0 || errb.Len() != 0 {
			t.Fatalf("%v: code %d, stderr %q", args, code, errb.String())
		}
		for _, want := range []string{"orders [serve]", "orders token", "orders help", "ORDERS_AUTH_SECRET"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("%v: %q missing", args, want)
			}
		}
		new(tokenArgs).flags(nil).VisitAll(func(f *flag.Flag) {
			if !strings.Contains(out.String(), "-"+f.Name) {
				t.Errorf("%v: flag -%s missing", args, f.Name)
			}
		})
	}
	var errb bytes.Buffer
	if code := run(context.Background(), []string{"nope"}, func(string) string { return "" }, slog.New(slog.DiscardHandler), &bytes.Buffer{}, &errb); code != 2 || !strings.Contains(errb.String(), "orders help") {
		t.Fatalf("unknown command: %d %q", code, errb.String())
	}
}
