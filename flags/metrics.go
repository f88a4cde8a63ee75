package flags

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	changes       *prometheus.CounterVec
	evals         [numSources]prometheus.Counter
	unknown       prometheus.Counter
	refreshErrors prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	if reg == nil {
		return nil, nil
	}
	changes := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hardening_flags_changes_total",
		Help: "Flag toggles recorded, by flag (flag names are registered in code, so bounded).",
	}, []string{"flag"})
	evals := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hardening_flags_evaluations_total",
		Help: "Flag evaluations by result: override, global, default, unknown, stale.",
	}, []string{"result"})
	unknown := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "hardening_flags_unknown_total",
		Help: "Evaluations of flags that were not registered (the caller's default was returned).",
	})
	refreshErrors := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "hardening_flags_refresh_errors_total",
		Help: "Failed attempts to refresh the flag cache from the store.",
	})
	var err error
	if changes, err = register(reg, changes); err != nil {
		return nil, err
	}
	if evals, err = register(reg, evals); err != nil {
		return nil, err
	}
	if unknown, err = register(reg, unknown); err != nil {
		return nil, err
	}
	if refreshErrors, err = register(reg, refreshErrors); err != nil {
		return nil, err
	}
	m := &metrics{changes: changes, unknown: unknown, refreshErrors: refreshErrors}
	for s := Source(0); s < numSources; s++ {
		m.evals[s] = evals.WithLabelValues(s.String())
	}
	return m, nil
}

// register registers c, or returns the collector already registered under
// the same descriptor, so several clients can share one registry.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing, nil
			}
		}
		return c, err
	}
	return c, nil
}
