package flags

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/systembuilderhub/hardening/internal/promreg"
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
	if changes, err = promreg.Register(reg, changes); err != nil {
		return nil, err
	}
	if evals, err = promreg.Register(reg, evals); err != nil {
		return nil, err
	}
	if unknown, err = promreg.Register(reg, unknown); err != nil {
		return nil, err
	}
	if refreshErrors, err = promreg.Register(reg, refreshErrors); err != nil {
		return nil, err
	}
	m := &metrics{changes: changes, unknown: unknown, refreshErrors: refreshErrors}
	for s := Source(0); s < numSources; s++ {
		m.evals[s] = evals.WithLabelValues(s.String())
	}
	return m, nil
}
