package migrate

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"github.com/systembuilderhub/hardening/internal/problem"
)

// Check is one readiness dependency besides the schema, for example a Redis
// ping. A non-nil error makes the service not ready with Reason.
type Check struct {
	// Name identifies the check in verbose output.
	Name string
	// Reason is the problem reason code when the check fails; empty means
	// "dependency_unavailable".
	Reason string
	// Func runs the check; it should honour ctx.
	Func func(ctx context.Context) error
}

// ReadinessOption configures ReadinessHandler.
type ReadinessOption func(*readiness)

// CacheFor sets how long a verdict is reused (default 2s), so a busy
// probe does not query the database on every call.
func CacheFor(d time.Duration) ReadinessOption { return func(r *readiness) { r.ttl = d } }

// WithCheck adds a dependency check run after the database and schema.
func WithCheck(c Check) ReadinessOption { return func(r *readiness) { r.checks = append(r.checks, c) } }

// CheckTimeout bounds each verdict's work (default 2s).
func CheckTimeout(d time.Duration) ReadinessOption { return func(r *readiness) { r.timeout = d } }

// CheckResult is one line of a verbose readiness answer.
type CheckResult struct {
	Name    string `json:"name"`
	OK      bool   `json:"ok"`
	Reason  string `json:"reason,omitempty"`
	Current *int   `json:"current,omitempty"`
	Target  *int   `json:"target,omitempty"`
}

type verdict struct {
	ready  bool
	reason string
	detail string
	checks []CheckResult
	at     time.Time
}

type readiness struct {
	m       *Migrator
	ttl     time.Duration
	timeout time.Duration
	checks  []Check

	mu   sync.Mutex
	last *verdict
}

// ReadinessHandler returns a /readyz handler: 200 {"status":"ready"} when
// the database answers, every set is at head and every extra check passes;
// otherwise 503 problem+json whose reason is schema_pending, schema_ahead,
// checksum_mismatch, db_unavailable or the failing check's reason. With
// the query parameter "verbose" the answer lists each check. The verdict
// is cached for CacheFor.
func (m *Migrator) ReadinessHandler(opts ...ReadinessOption) http.Handler {
	r := &readiness{m: m, ttl: 2 * time.Second, timeout: 2 * time.Second}
	for _, o := range opts {
		o(r)
	}
	return r
}

func (r *readiness) verdict(ctx context.Context) *verdict {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	if r.last != nil && now.Sub(r.last.at) < r.ttl {
		return r.last
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.timeout)
	defer cancel()
	v := &verdict{ready: true, at: now}
	fail := func(reason, detail string) {
		if v.ready {
			v.ready, v.reason, v.detail = false, reason, detail
		}
	}
	if err := r.m.db.PingContext(ctx); err != nil {
		v.checks = append(v.checks, CheckResult{Name: "database", Reason: ReasonDBUnavailable})
		fail(ReasonDBUnavailable, "the database does not answer")
	} else if st, err := r.m.Status(ctx); err != nil {
		v.checks = append(v.checks, CheckResult{Name: "database", Reason: ReasonDBUnavailable})
		fail(ReasonDBUnavailable, "the database does not answer")
	} else {
		v.checks = append(v.checks, CheckResult{Name: "database", OK: true})
		for _, s := range st.Sets {
			one := Status{Sets: []SetStatus{s}}
			cur, tgt := s.Current, s.Target
			v.checks = append(v.checks, CheckResult{Name: "schema:" + s.Set, OK: one.AtHead(), Reason: one.Reason(), Current: &cur, Target: &tgt})
		}
		if !st.AtHead() {
			fail(st.Reason(), "the database schema is not at this binary's head; see the service log for remediation")
		}
	}
	for _, c := range r.checks {
		reason := c.Reason
		if reason == "" {
			reason = "dependency_unavailable"
		}
		if err := c.Func(ctx); err != nil {
			v.checks = append(v.checks, CheckResult{Name: c.Name, Reason: reason})
			fail(reason, c.Name+" is unavailable")
			continue
		}
		v.checks = append(v.checks, CheckResult{Name: c.Name, OK: true})
	}
	r.last = v
	return v
}

func (r *readiness) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	v := r.verdict(req.Context())
	_, verbose := req.URL.Query()["verbose"]
	if !v.ready {
		p := problem.Problem{Status: http.StatusServiceUnavailable, Title: "Service not ready", Reason: v.reason, Detail: v.detail}
		if verbose {
			p = p.With("checks", v.checks)
		}
		problem.Write(w, req, p)
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
