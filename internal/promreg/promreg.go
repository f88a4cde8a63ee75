// Package promreg registers the kit's Prometheus collectors so that several
// instances of one feature (two Quotas, two flag clients, a replica's second
// policy) can share one registry.
package promreg

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Register registers c with reg. When an identical collector is already
// registered it returns that one instead, so both instances count into the
// same series; any other registration error is returned with c.
func Register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	if err == nil {
		return c, nil
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	return c, err
}
