// Command orders is a small order service built on the hardening kit: the
// shortest way to see every package in a service of one's own. It keeps its
// state in memory, in SQLite (ORDERS_DATABASE_URL) or in Redis
// (ORDERS_REDIS_URL).
//
// Usage:
//
//	orders                                   serve on ORDERS_ADDR (default 127.0.0.1:8090)
//	orders token -sub alice -org acme [-admin] [-ttl 1h]
//	                                         print a bearer token signed with ORDERS_AUTH_SECRET
//	orders help                              list the commands and flags (also -h)
//
// Without ORDERS_AUTH_SECRET it serves only on a loopback address, signs
// with a random secret and logs two tokens valid for an hour (alice, a user
// of acme, and root, an admin of acme). Errors are problem+json documents
// whose type is https://orders.example.com/problems/<reason>.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"time"
)

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, log, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// usage lists the commands; "orders -h", "orders help" and
// "orders <command> -h" print it (with the token flags) and exit 0.
const usage = `orders is a small order service built on the hardening kit.

Usage:
  orders [serve]
        serve on ORDERS_ADDR (default 127.0.0.1:8090); the default command
  orders token -sub USER -org ORG [-admin] [-ttl 1h]
        print a bearer token signed with ORDERS_AUTH_SECRET
  orders help
        print this help

Configuration: ORDERS_ADDR, ORDERS_AUTH_SECRET, ORDERS_DATABASE_URL,
ORDERS_REDIS_URL (see the README).

Flags of token:
`

// run is main without the process; it returns the exit code.
func run(ctx context.Context, args []string, getenv func(string) string, log *slog.Logger, stdout, stderr io.Writer) int {
	name := "serve"
	if len(args) > 0 {
		name, args = args[0], args[1:]
	}
	if name == "help" || isHelp(name) || slices.ContainsFunc(args, isHelp) {
		fmt.Fprint(stdout, usage)
		new(tokenArgs).flags(stdout).PrintDefaults()
		return 0
	}
	var err error
	switch name {
	case "serve":
		err = serve(ctx, getenv, log, stdout)
	case "token":
		err = runToken(args, getenv, stdout)
	default:
		fmt.Fprintf(stderr, "orders: unknown command %q; run 'orders help'\n", name)
		return 2
	}
	if err != nil {
		fmt.Fprintln(stderr, "orders:", err)
		return 1
	}
	return 0
}

func isHelp(arg string) bool { return arg == "-h" || arg == "-help" || arg == "--help" }

// serve runs the service until ctx is done, then shuts down: streams end
// first (they would hold Shutdown), then in-flight requests, then stores.
// It prints "listening on <addr>" to out once it accepts connections.
func serve(ctx context.Context, getenv func(string) string, log *slog.Logger, out io.Writer) error {
	cfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	a, err := newApp(ctx, cfg, log, nil)
	if err != nil {
		return err
	}
	defer a.Close(context.WithoutCancel(ctx))
	if cfg.DevSecret {
		if err := logDevTokens(log, cfg.Secret); err != nil {
			return err
		}
	}
	h, err := a.handler()
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("ORDERS_ADDR: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(out, "listening on %s\n", ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	a.streams.Close(sctx)
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}
