package idempotency

import "github.com/prometheus/client_golang/prometheus"

// Outcomes counted by hardening_idempotency_requests_total.
const (
	OutcomeFirst    = "first"    // the handler ran for a new key
	OutcomeReplay   = "replay"   // a stored response was replayed
	OutcomeConflict = "conflict" // 409: the key is in flight
	OutcomeMismatch = "mismatch" // 422: same key, different request
	OutcomeInvalid  = "invalid"  // 400/413: malformed key, body too large
	OutcomeMissing  = "missing"  // no key: passed through or 400
	OutcomeError    = "error"    // the store or scope failed
)

// Results counted by hardening_idempotency_lease_renewals_total.
const (
	RenewRenewed = "renewed" // the lease was extended
	RenewLost    = "lost"    // the owner no longer held the key
	RenewError   = "error"   // the store failed; retried at the next tick
)

type metrics struct {
	requests *prometheus.CounterVec
	outcome  map[string]prometheus.Counter // resolved children of requests
	keys     prometheus.Gauge
	inFlight prometheus.Gauge
	swept    prometheus.Counter
	fenced   prometheus.Counter
	renewals *prometheus.CounterVec
	renewal  map[string]prometheus.Counter // resolved children of renewals
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hardening_idempotency_requests_total",
			Help: "Requests seen by the idempotency middleware, by outcome.",
		}, []string{"outcome"}),
		keys: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hardening_idempotency_stored_keys",
			Help: "Unexpired idempotency records in the store, as of the last sweep or status read.",
		}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hardening_idempotency_in_flight_keys",
			Help: "Idempotency records whose lease is held, as of the last sweep or status read.",
		}),
		swept: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hardening_idempotency_sweep_deleted_total",
			Help: "Expired idempotency records deleted by the sweeper.",
		}),
		fenced: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hardening_idempotency_fenced_completions_total",
			Help: "Responses not stored because their request had lost its lease to another.",
		}),
		renewals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hardening_idempotency_lease_renewals_total",
			Help: "Lease renewals of running handlers, by result (renewed, lost, error).",
		}, []string{"result"}),
	}
	m.outcome = make(map[string]prometheus.Counter, 7)
	for _, o := range []string{OutcomeFirst, OutcomeReplay, OutcomeConflict, OutcomeMismatch, OutcomeInvalid, OutcomeMissing, OutcomeError} {
		m.outcome[o] = m.requests.WithLabelValues(o)
	}
	m.renewal = make(map[string]prometheus.Counter, 3)
	for _, r := range []string{RenewRenewed, RenewLost, RenewError} {
		m.renewal[r] = m.renewals.WithLabelValues(r)
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.requests, m.keys, m.inFlight, m.swept, m.fenced, m.renewals} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}
