// Command hub is the reference service of the hardening kit: every package
// composed behind one http.ServeMux, on embedded SQLite by default and on
// Redis when REDIS_URL is set.
//
// Usage:
//
//	hub                      serve (HUB_ADDR, default 127.0.0.1:8080)
//	hub migrate status|up    print or apply database migrations
//	hub token -sub alice -tenant acme [-admin] [-ttl 1h]
//	                         print a bearer token for the API
//
// See the README for every environment variable.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/systembuilderhub/hardening/migrate"
)

// subcommands maps the first argument to its command; no argument serves.
var subcommands = map[string]func(ctx context.Context, args []string, stdout io.Writer, log *slog.Logger) error{
	"serve":   func(ctx context.Context, _ []string, _ io.Writer, log *slog.Logger) error { return serve(ctx, log) },
	"migrate": runMigrate,
	"token":   runToken,
	// subcommands: one entry each

	"egress-proxy": runEgressProxy, // previewsec egress proxy on EGRESS_PROXY_ADDR
}

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	name, args := "serve", os.Args[1:]
	if len(args) > 0 {
		name, args = args[0], args[1:]
	}
	cmd, ok := subcommands[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "hub: unknown command %q (want serve, migrate, token)\n", name)
		os.Exit(2)
	}
	if err := cmd(ctx, args, os.Stdout, log); err != nil {
		fmt.Fprintf(os.Stderr, "hub: %v\n", err)
		os.Exit(1)
	}
}

func serve(ctx context.Context, log *slog.Logger) error {
	cfg, err := configFromEnv()
	if err != nil {
		return err
	}
	a, err := newApp(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := a.Close(cctx); err != nil {
			log.Error("shutdown", "err", err)
		}
	}()
	ln, err := listen(cfg)
	if err != nil {
		return err
	}
	srv := newServer(ctx, a.handler())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("hub listening", "addr", ln.Addr().String(), "database", cfg.DBPath, "redis", cfg.RedisURL != "", "schema", a.schema.Reason(),
		"max_conns", cfg.MaxConns, "body_timeout", cfg.BodyTimeout.String(), "write_timeout", cfg.WriteTimeout.String())
	var failed error
	select {
	case err := <-errc:
		return err
	case failed = <-a.setupFailed():
		log.Error("shutting down: the features could not be set up", "err", failed)
	case <-ctx.Done():
		log.Info("shutting down: draining requests")
	}
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return errors.Join(failed, err)
	}
	return failed
}

func runMigrate(ctx context.Context, args []string, stdout io.Writer, log *slog.Logger) error {
	if len(args) != 1 || (args[0] != "status" && args[0] != "up") {
		return errors.New("usage: hub migrate status|up")
	}
	cfg, err := configFromEnv()
	if err != nil {
		return err
	}
	db, err := migrate.OpenSQLite(ctx, cfg.DBPath, 5*time.Second)
	if err != nil {
		return fmt.Errorf("DATABASE_URL=%s: %w", cfg.DatabaseURL, err)
	}
	defer db.Close()
	m, err := migratorFor(db, log)
	if err != nil {
		return err
	}
	if args[0] == "up" {
		applied, err := m.Up(ctx)
		for _, mig := range applied {
			fmt.Fprintf(stdout, "applied %s/%04d_%s\n", mig.Set, mig.Version, mig.Name)
		}
		if err != nil {
			return err
		}
		if len(applied) == 0 {
			fmt.Fprintln(stdout, "nothing to apply")
		}
	}
	st, err := m.Status(ctx)
	if err != nil {
		return err
	}
	fmt.Fprint(stdout, st.String())
	if !st.AtHead() {
		fmt.Fprintln(stdout, st.Remediation(cfg.Migrations.UpCommand))
	}
	return nil
}

func runToken(ctx context.Context, args []string, stdout io.Writer, log *slog.Logger) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	sub := fs.String("sub", "", "user id (required)")
	tenant := fs.String("tenant", "", "tenant id (required)")
	isAdmin := fs.Bool("admin", false, "grant the admin role")
	ttl := fs.Duration("ttl", time.Hour, "lifetime")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *sub == "" || *tenant == "" || *ttl <= 0 {
		return errors.New("usage: hub token -sub USER -tenant TENANT [-admin] [-ttl 1h]")
	}
	cfg, err := configFromEnv()
	if err != nil {
		return err
	}
	secret := cfg.AuthSecret
	if len(secret) == 0 {
		db, _, _, err := openDB(ctx, cfg, slog.New(slog.DiscardHandler))
		if err != nil {
			return err
		}
		defer db.Close()
		if secret, err = devAuthSecret(ctx, db); err != nil {
			return err
		}
	}
	var roles []string
	if *isAdmin {
		roles = []string{"admin"}
	}
	au := &authenticator{secret: secret, now: time.Now, maxTTL: cfg.AuthMaxTTL}
	tok, err := au.mint(*sub, *tenant, roles, *ttl)
	if errors.Is(err, errMintOverLifetime) {
		return fmt.Errorf("-ttl %s is over HUB_AUTH_MAX_TTL (%s): the hub would refuse the token", *ttl, au.lifetimeMax())
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, tok)
	return nil
}
