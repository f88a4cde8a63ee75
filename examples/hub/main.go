// Command hub is the reference service of the hardening kit: every package
// composed behind one http.ServeMux, on embedded SQLite by default, on
// PostgreSQL when DATABASE_URL is postgres://…, and on Redis when
// REDIS_URL is set.
//
// Usage:
//
//	hub                      serve (HUB_ADDR, default 127.0.0.1:8080)
//	hub migrate status|up    print or apply database migrations
//	hub token -sub alice -tenant acme [-admin] [-ttl 1h]
//	                         print a bearer token for the API
//	hub egress-proxy         run the egress CONNECT proxy (EGRESS_PROXY_ADDR)
//	hub help [command]       list the commands and their flags (also -h)
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

	"github.com/redis/go-redis/v9"
)

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	redis.SetLogger(redisLogger{log})
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, log)
	stop()
	os.Exit(code)
}

func serve(ctx context.Context, log *slog.Logger) error {
	cfg, err := configFromEnv()
	if err != nil {
		return err
	}
	// Listen first: a port in use is reported before anything is opened,
	// migrated or logged.
	ln, err := listen(cfg)
	if err != nil {
		return err
	}
	a, err := newApp(ctx, cfg, log)
	if err != nil {
		_ = ln.Close()
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := a.Close(cctx); err != nil {
			log.Error("shutdown", "err", err)
		}
	}()
	srv := newServer(ctx, a.handler())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("hub listening", "addr", ln.Addr().String(), "database", cfg.databaseLabel(), "redis", cfg.RedisURL != "", "schema", a.schema.Reason(),
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
		return fmt.Errorf("%w: hub migrate status|up", errUsage)
	}
	cfg, err := configFromEnv()
	if err != nil {
		return err
	}
	db, err := openDatabase(ctx, cfg)
	if err != nil {
		return err
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

// tokenArgs are the flags of "hub token".
type tokenArgs struct {
	sub, tenant string
	admin       bool
	ttl         time.Duration
}

func (t *tokenArgs) flags() *flag.FlagSet {
	fs := newFlagSet("token")
	fs.StringVar(&t.sub, "sub", "", "user id (required)")
	fs.StringVar(&t.tenant, "tenant", "", "tenant id (required)")
	fs.BoolVar(&t.admin, "admin", false, "grant the admin role")
	fs.DurationVar(&t.ttl, "ttl", time.Hour, "lifetime, at most HUB_AUTH_MAX_TTL")
	return fs
}

func runToken(ctx context.Context, args []string, stdout io.Writer, log *slog.Logger) error {
	var ta tokenArgs
	if err := ta.flags().Parse(args); err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	if ta.sub == "" || ta.tenant == "" || ta.ttl <= 0 {
		return fmt.Errorf("%w: hub token -sub USER -tenant TENANT [-admin] [-ttl 1h]", errUsage)
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
	if ta.admin {
		roles = []string{"admin"}
	}
	au := &authenticator{secret: secret, now: time.Now, maxTTL: cfg.AuthMaxTTL}
	tok, err := au.mint(ta.sub, ta.tenant, roles, ta.ttl)
	if errors.Is(err, errMintOverLifetime) {
		return fmt.Errorf("-ttl %s is over HUB_AUTH_MAX_TTL (%s): the hub would refuse the token", ta.ttl, au.lifetimeMax())
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, tok)
	return nil
}
