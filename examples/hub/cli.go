package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
)

// command is one subcommand of the hub binary.
type command struct {
	name    string
	args    string // what follows the name in a synopsis
	summary string
	flags   func() *flag.FlagSet // the command's flags, for help; nil when it has none
	run     func(ctx context.Context, args []string, stdout io.Writer, log *slog.Logger) error
}

// commands lists every subcommand, in the order help shows them. With no
// argument the hub serves.
var commands = []command{
	{name: "serve", summary: "serve the API and the demo page on HUB_ADDR (default 127.0.0.1:8080); the default command",
		run: func(ctx context.Context, _ []string, _ io.Writer, log *slog.Logger) error { return serve(ctx, log) }},
	{name: "migrate", args: "status|up", summary: "print or apply the database migrations of DATABASE_URL",
		run: runMigrate},
	{name: "token", args: "-sub USER -tenant TENANT [-admin] [-ttl 1h]", summary: "print a bearer token for the API",
		flags: func() *flag.FlagSet { return new(tokenArgs).flags() }, run: runToken},
	{name: "egress-proxy", args: "[-addr HOST:PORT] [-max-tunnels N] [-dns-cache D]",
		summary: "run the egress CONNECT proxy that enforces the PREVIEW_EGRESS_* policy",
		flags:   func() *flag.FlagSet { return new(proxyArgs).flags() }, run: runEgressProxy},
	{name: "help", args: "[command]", summary: "print this help, or one command's"},
}

// run is main without the process: it returns the exit code. Help goes to
// stdout with code 0; usage errors to stderr with code 2.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, log *slog.Logger) int {
	name := "serve"
	if len(args) > 0 {
		name, args = args[0], args[1:]
	}
	if isHelp(name) || name == "help" {
		if len(args) > 0 {
			return printCommandHelp(stdout, stderr, args[0])
		}
		printUsage(stdout)
		return 0
	}
	i := slices.IndexFunc(commands, func(c command) bool { return c.name == name })
	if i < 0 || commands[i].run == nil {
		fmt.Fprintf(stderr, "hub: unknown command %q\n\n", name)
		printUsage(stderr)
		return 2
	}
	if slices.ContainsFunc(args, isHelp) {
		return printCommandHelp(stdout, stderr, name)
	}
	if err := commands[i].run(ctx, args, stdout, log); err != nil {
		fmt.Fprintf(stderr, "hub: %v\n", err)
		if errors.Is(err, errUsage) {
			fmt.Fprintf(stderr, "run 'hub %s -h' for its flags\n", name)
			return 2
		}
		return 1
	}
	return 0
}

// errUsage is wrapped by a command's flag errors.
var errUsage = errors.New("usage")

func isHelp(arg string) bool { return arg == "-h" || arg == "-help" || arg == "--help" }

// newFlagSet returns a flag set that reports errors instead of printing:
// run prints the help.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

func printUsage(w io.Writer) {
	fmt.Fprint(w, "hub is the reference service of the hardening kit (System Builder Hub).\n\nUsage:\n  hub [command] [flags]\n\nCommands:\n")
	for _, c := range commands {
		fmt.Fprintf(w, "  %s\n        %s\n", strings.TrimSpace(c.name+" "+c.args), c.summary)
		if c.flags != nil {
			printFlags(w, c.flags(), "        ")
		}
	}
	fmt.Fprint(w, "\nEvery command reads its configuration from the environment (HUB_*, DATABASE_URL, REDIS_URL, PREVIEW_*, ...):\n"+
		"see docs/configuration.md.\n")
}

func printCommandHelp(stdout, stderr io.Writer, name string) int {
	i := slices.IndexFunc(commands, func(c command) bool { return c.name == name })
	if i < 0 {
		fmt.Fprintf(stderr, "hub: unknown command %q\n\n", name)
		printUsage(stderr)
		return 2
	}
	c := commands[i]
	fmt.Fprintf(stdout, "Usage: hub %s\n\n%s.\n", strings.TrimSpace(c.name+" "+c.args), c.summary)
	if c.flags != nil {
		fmt.Fprintln(stdout, "\nFlags:")
		printFlags(stdout, c.flags(), "  ")
	}
	return 0
}

func printFlags(w io.Writer, fs *flag.FlagSet, indent string) {
	fs.VisitAll(func(f *flag.Flag) {
		def := ""
		if f.DefValue != "" && f.DefValue != "false" {
			def = fmt.Sprintf(" (default %s)", f.DefValue)
		}
		fmt.Fprintf(w, "%s-%-12s %s%s\n", indent, f.Name, f.Usage, def)
	})
}
