package main

import (
	"bytes"
	"context"
	"flag"
	"log/slog"
	"strings"
	"testing"
)

func runCLI(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(context.Background(), args, &out, &errb, slog.New(slog.DiscardHandler))
	return code, out.String(), errb.String()
}

// TestCLIHelp: "hub -h", "hub help" and "hub --help" list every command
// with every flag; "hub <command> -h" and "hub help <command>" show one.
func TestCLIHelp(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"help"}, {"--help"}, {"-help"}} {
		code, out, errOut := runCLI(args...)
		if code != 0 || errOut != "" {
			t.Fatalf("%v: code %d, stderr %q", args, code, errOut)
		}
		for _, c := range commands {
			if !strings.Contains(out, "\n  "+c.name) {
				t.Errorf("%v: command %q missing from\n%s", args, c.name, out)
			}
			if c.flags != nil {
				c.flags().VisitAll(func(f *flag.Flag) {
					if !strings.Contains(out, "-"+f.Name+" ") {
						t.Errorf("%v: flag -%s of %s missing", args, f.Name, c.name)
					}
				})
			}
		}
	}
	for _, want := range []string{"serve", "migrate status|up", "token", "egress-proxy"} {
		if _, out, _ := runCLI("-h"); !strings.Contains(out, want) {
			t.Errorf("usage lacks %q", want)
		}
	}
	for _, c := range commands {
		for _, args := range [][]string{{c.name, "-h"}, {"help", c.name}} {
			if c.name == "help" && args[0] == "help" {
				continue
			}
			code, out, _ := runCLI(args...)
			if code != 0 || !strings.HasPrefix(out, "Usage: hub "+c.name) {
				t.Fatalf("%v: code %d\n%s", args, code, out)
			}
			if c.flags != nil {
				c.flags().VisitAll(func(f *flag.Flag) {
					if !strings.Contains(out, "-"+f.Name+" ") {
						t.Errorf("%v: flag -%s missing", args, f.Name)
					}
				})
			}
		}
	}
}

// TestCLIUsageErrors: an unknown command or flag exits 2 and says what to run.
func TestCLIUsageErrors(t *testing.T) {
	code, out, errOut := runCLI("nope")
	if code != 2 || out != "" || !strings.Contains(errOut, `unknown command "nope"`) || !strings.Contains(errOut, "egress-proxy") {
		t.Fatalf("unknown command: %d %q %q", code, out, errOut)
	}
	code, _, errOut = runCLI("token", "-x")
	if code != 2 || !strings.Contains(errOut, "-x") || !strings.Contains(errOut, "hub token -h") {
		t.Fatalf("unknown flag: %d %q", code, errOut)
	}
	code, _, errOut = runCLI("migrate", "sideways")
	if code != 2 || !strings.Contains(errOut, "hub migrate status|up") {
		t.Fatalf("bad migrate argument: %d %q", code, errOut)
	}
	code, _, _ = runCLI("help", "nope")
	if code != 2 {
		t.Fatalf("help of an unknown command: %d", code)
	}
}
