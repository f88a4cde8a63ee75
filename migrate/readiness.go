package migrate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/systembuilderhub/hardening"
)

// Check is one readiness dependency besides the schema, for example a Redis
// ping. A non-nil error makes the service not ready with Reason.
type Check struct {
	// Name identifies the check in verbose output; it is required.
	Name string
	// Reason is the problem reason code when the check fails; empty means
	// "dependency_unavailable".
	Reason string
	// Func runs the check; it should honour ctx. It is required.
	Func func(ctx context.Context) error
}

// CheckResult is one line of a verbose readiness answer.
type CheckResult struct {
	Name    string `json:"name"`
	OK      bool   `json:"ok"`
	Reason  string `json:"reason,omitempty"`
	Current *int   `json:"current,omitempty"`
	Target  *int   `json:"target,omitempty"`
}

type verdict struct {
	err    *NotReadyError // nil when ready; Checks unset
	checks []CheckResult
	at     time.Time
}

type readiness struct {
	m   *Migrator
	cfg readinessConfig

	mu   sync.Mutex
	last *verdict
}

// ReadinessHandler returns a /readyz handler: 200 {"status":"ready"} when
// the database answers, every set is at head and every extra check passes;
// otherwise it passes a *NotReadyError to the error handler, whose default
// answers 503 problem+json with the reason schema_pending, schema_ahead,
// checksum_mismatch, db_unavailable or the failing check's reason. With
// the query parameter "verbose" the answer lists each check. The verdict
// is cached for CacheFor. It reports invalid options (see each option).
func (m *Migrator) ReadinessHandler(opts ...ReadinessOption) (http.Handler, error) {
	c := readinessConfig{ttl: 2 * time.Second, timeout: 2 * time.Second, now: m.now, onError: hardening.WriteError}
	for _, o := range opts {
		if o != nil {
			o.applyReadiness(&c)
		}
	}
	switch {
	case c.ttl < 0:
		return nil, fmt.Errorf("migrate: CacheFor(%s): want zero or a positive duration", c.ttl)
	case c.timeout <= 0:
		return nil, fmt.Errorf("migrate: CheckTimeout(%s): want a positive duration", c.timeout)
	case c.now == nil:
		return nil, errors.New("migrate: WithClock: nil clock")
	case c.onError == nil:
		return nil, errors.New("migrate: WithErrorHandler: nil handler")
	}
	for _, ch := range c.checks {
		if ch.Name == "" || ch.Func == nil {
			return nil, fmt.Errorf("migrate: WithCheck(%q): a check needs a Name and a Func", ch.Name)
		}
	}
	return &readiness{m: m, cfg: c}, nil
}

func (r *readiness) verdict(ctx context.Context) *verdict {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.cfg.now()
	if r.last != nil && now.Sub(r.last.at) < r.cfg.ttl {
		return r.last
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.timeout)
	defer cancel()
	v := &verdict{at: now}
	fail := func(reason, detail string, cause error) {
		if v.err == nil {
			v.err = &NotReadyError{Reason: reason, Detail: detail, Err: cause}
		}
	}
	st, err := r.schema(ctx)
	if err != nil {
		v.checks = append(v.checks, CheckResult{Name: "database", Reason: ReasonDBUnavailable})
		fail(ReasonDBUnavailable, "the database does not answer", fmt.Errorf("%w: %w", ErrDBUnavailable, err))
	} else {
		v.checks = append(v.checks, CheckResult{Name: "database", OK: true})
		for _, s := range st.Sets {
			one := Status{Sets: []SetStatus{s}}
			cur, tgt := s.Current, s.Target
			v.checks = append(v.checks, CheckResult{Name: "schema:" + s.Set, OK: one.AtHead(), Reason: one.Reason(), Current: &cur, Target: &tgt})
		}
		if !st.AtHead() {
			fail(st.Reason(), "the database schema is not at this binary's head; see the service log for remediation", st.Err(""))
		}
	}
	for _, c := range r.cfg.checks {
		reason := c.Reason
		if reason == "" {
			reason = ReasonDependencyUnavailable
		}
		if err := c.Func(ctx); err != nil {
			v.checks = append(v.checks, CheckResult{Name: c.Name, Reason: reason})
			fail(reason, c.Name+" is unavailable", fmt.Errorf("migrate: readiness check %q: %w", c.Name, err))
			continue
		}
		v.checks = append(v.checks, CheckResult{Name: c.Name, OK: true})
	}
	r.last = v
	return v
}

// schema pings the database and reads the status.
func (r *readiness) schema(ctx context.Context) (Status, error) {
	if err := r.m.db.PingContext(ctx); err != nil {
		return Status{}, err
	}
	return r.m.Status(ctx)
}

func (r *readiness) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	v := r.verdict(req.Context())
	_, verbose := req.URL.Query()["verbose"]
	if v.err != nil {
		e := *v.err
		if verbose {
			e.Checks = v.checks
		}
		r.cfg.onError(w, req, &e)
		return
	}
	body := map[string]any{"status": "ready"}
	if verbose {
		body["checks"] = v.checks
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(body)
}
