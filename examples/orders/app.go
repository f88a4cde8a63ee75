package main

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/systembuilderhub/hardening"
	"github.com/systembuilderhub/hardening/flags"
	"github.com/systembuilderhub/hardening/idempotency"
	"github.com/systembuilderhub/hardening/previewsec/egress"
	"github.com/systembuilderhub/hardening/streamauth"
	"github.com/systembuilderhub/hardening/streamauth/redisbus"
	"github.com/systembuilderhub/hardening/tenancy"
)

// flagExpress is the service's one feature flag.
const flagExpress = "express_shipping"

// problemTypeBase is the service's problem type namespace: every error,
// the kit's and its own, is answered with type problemTypeBase + reason.
const problemTypeBase = "https://orders.example.com/problems/"

// app is the service: the kit's features on one set of stores.
type app struct {
	log     *slog.Logger
	onError hardening.ErrorHandler // the one writer of every error answer
	auth    hardening.Authenticator
	tenant  *tenancy.Middleware
	quotas  *tenancy.Quotas
	idem    *idempotency.Middleware
	flags   *flags.Client
	streams *streamauth.Registry
	egress  *egress.Policy
	closers []func(context.Context) error // run in reverse by Close
}

// newApp builds the service on the stores cfg names. resolver is the
// egress policy's resolver (nil: the system's); a test passes a fixed one.
func newApp(ctx context.Context, cfg config, log *slog.Logger, resolver egress.Resolver) (_ *app, err error) {
	a := &app{log: log, onError: hardening.ProblemWriter{TypeBase: problemTypeBase}.WriteError}
	defer func() {
		if err != nil {
			a.Close(context.WithoutCancel(ctx))
		}
	}()
	st, err := a.openStores(ctx, cfg)
	if err != nil {
		return nil, err
	}
	// Bearer tokens only (no cookie: the REST routes take no ambient
	// credential), with the tenant in the "org" claim.
	if a.auth, err = streamauth.NewJWT(cfg.Secret, streamauth.WithTenantClaim("org"),
		streamauth.WithCookie(""), streamauth.WithQueryParam("")); err != nil {
		return nil, err
	}
	onError := tenancy.WithErrorHandler(a.onError)
	// The tenant is the caller's org (the default: hardening.CallerFrom).
	if a.tenant, err = tenancy.New(tenancy.WithLogger(log), onError); err != nil {
		return nil, err
	}
	if a.quotas, err = tenancy.NewQuotas(st.quotas, tenancy.WithLogger(log), onError,
		tenancy.Rate("orders", 5, time.Minute), tenancy.Concurrency("exports", 2, time.Minute)); err != nil {
		return nil, err
	}
	// Records are scoped by the caller's org and user (the default).
	if a.idem, err = idempotency.New(st.idem, idempotency.WithLogger(log), idempotency.WithErrorHandler(a.onError)); err != nil {
		return nil, err
	}
	if a.flags, err = flags.New(st.flags, flags.WithLogger(log),
		flags.WithFlags(flags.Flag{Name: flagExpress, Description: "ship orders by express"})); err != nil {
		return nil, err
	}
	if err = a.idem.Start(ctx); err != nil {
		return nil, err
	}
	a.closers = append(a.closers, a.idem.Close)
	if err = a.flags.Start(ctx); err != nil {
		return nil, err
	}
	a.closers = append(a.closers, a.flags.Close)
	if err = a.setupStreams(ctx, st); err != nil {
		return nil, err
	}
	if a.egress, err = egress.NewPolicy(egress.WithMode(egress.ModePublic), egress.WithLogger(log),
		egress.WithResolver(resolver)); err != nil {
		return nil, err
	}
	return a, nil
}

// setupStreams builds the event registry; in Redis mode events reach the
// streams of every replica through the bus.
func (a *app) setupStreams(ctx context.Context, st stores) (err error) {
	opts := []streamauth.Option{streamauth.WithLogger(a.log)}
	var bus *redisbus.Bus
	if st.rdb != nil {
		if bus, err = redisbus.New(st.rdb, redisbus.WithPrefix(redisPrefix)); err != nil {
			return err
		}
		opts = append(opts, streamauth.WithBroadcaster(bus))
	}
	if a.streams, err = streamauth.NewRegistry(opts...); err != nil {
		return err
	}
	a.closers = append(a.closers, a.streams.Close)
	if bus == nil {
		return nil
	}
	if err = bus.Start(ctx, a.streams); err == nil {
		a.closers = append(a.closers, bus.Close)
	}
	return err
}

// Close stops the background work and closes the stores, streams first.
func (a *app) Close(ctx context.Context) error {
	var errs []error
	for i := len(a.closers) - 1; i >= 0; i-- {
		errs = append(errs, a.closers[i](ctx))
	}
	return errors.Join(errs...)
}
