package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/systembuilderhub/hardening"
	"github.com/systembuilderhub/hardening/migrate"
)

// schemaPoll is how often a hub waiting for its schema checks it again.
const schemaPoll = time.Second

// lateStart is a hub that started in lenient mode with migrations pending
// (MIGRATIONS_AUTO_APPLY=false, or an auto-apply that failed): the feature
// stores cannot be built on tables that do not exist. It serves the
// public core routes at once and answers every other route of the API and
// the previews 503 schema_pending. It checks the schema every schemaPoll;
// once `hub migrate up` has applied the migrations (from another process),
// it sets up the features and serves every route, without a restart.
type lateStart struct {
	// mux is the hub's full routing once the features are set up.
	mux atomic.Pointer[http.ServeMux]
	// failed receives the error of a feature setup that failed; serve
	// then stops the hub, as it would have at startup.
	failed chan error
	// stop ends the wait and returns once it has ended.
	stop func()
}

// errFeaturesPending is the readiness check's error until the features
// are set up.
var errFeaturesPending = errors.New("the features wait for the database schema")

// awaitSchema starts waiting for the schema (see lateStart). Close stops
// the wait before it releases anything.
func (a *app) awaitSchema(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	l := &lateStart{failed: make(chan error, 1), stop: func() { cancel(); <-done }}
	ready, err := a.readiness(l)
	if err != nil {
		cancel()
		return err
	}
	a.late, a.ready = l, ready
	a.log.Warn("the features wait for the database schema: /api/ and /preview/ answer 503 schema_pending until the migrations are applied",
		"remediation", a.schema.Remediation(a.cfg.Migrations.UpCommand))
	go func() {
		defer close(done)
		t := time.NewTicker(schemaPoll)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			st, err := a.migrator.Status(ctx)
			if err != nil || st.Reason() == migrate.ReasonPending {
				continue
			}
			if err := a.setup(ctx); err != nil {
				l.failed <- fmt.Errorf("setting up the features once the schema was applied: %w", err)
				return
			}
			l.mux.Store(a.mux())
			a.log.Info("database schema applied: every route is served", "schema", st.Reason())
			return
		}
	}()
	return nil
}

// setupFailed returns the channel that receives a failed late setup; nil
// (never ready) when the hub did not start waiting for its schema.
func (a *app) setupFailed() <-chan error {
	if a.late == nil {
		return nil
	}
	return a.late.failed
}

// featuresCheck is the readiness check of a hub that started waiting for
// its schema: it fails (schema_pending) until the features are set up, so
// /readyz does not say ready in the moment between the migrations and the
// setup.
func (l *lateStart) featuresCheck() migrate.Check {
	return migrate.Check{Name: "features", Reason: migrate.ReasonPending, Func: func(context.Context) error {
		if l.mux.Load() == nil {
			return errFeaturesPending
		}
		return nil
	}}
}

// handler serves with the full routing once it is set up, and with
// pending until then.
func (l *lateStart) handler(pending http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if mux := l.mux.Load(); mux != nil {
			mux.ServeHTTP(w, r)
			return
		}
		pending.ServeHTTP(w, r)
	})
}

// pendingMux routes a hub waiting for its schema: the public core routes
// (/, /livez, /readyz, /metrics, /openapi.json) as always, every other
// route under /api/ and /preview/ 503 schema_pending, anything else the
// catch-all 404.
func (a *app) pendingMux() *http.ServeMux {
	mux := http.NewServeMux()
	for _, rt := range append(a.coreRoutes(), a.openapiRoutes()...) {
		if rt.Access == public {
			mux.Handle(rt.pattern(), rt.Handler)
		}
	}
	pending := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hardening.WriteProblem(w, r, hardening.NewProblem(http.StatusServiceUnavailable, migrate.ReasonPending,
			"the database schema has pending migrations; this route is served once they are applied (see the service log)"))
	})
	mux.Handle("/api/", pending)
	mux.Handle("/preview/", pending)
	mux.Handle("/", notFound())
	return mux
}
