package promreg

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestRegisterReusesTheRegisteredCollector(t *testing.T) {
	reg := prometheus.NewRegistry()
	opts := prometheus.CounterOpts{Name: "hardening_test_total", Help: "test"}
	first, err := Register(reg, prometheus.NewCounterVec(opts, []string{"l"}))
	if err != nil {
		t.Fatal(err)
	}
	second, err := Register(reg, prometheus.NewCounterVec(opts, []string{"l"}))
	if err != nil || second != first {
		t.Fatalf("second registration: %v, same collector %v", err, second == first)
	}
	// The same name with other labels is a real conflict.
	if _, err := Register(reg, prometheus.NewCounterVec(opts, []string{"other"})); err == nil {
		t.Fatal("a conflicting collector was accepted")
	}
	// The same descriptor as another collector type is not reused.
	if _, err := Register(reg, prometheus.NewCounter(opts)); err == nil {
		t.Fatal("a counter was accepted in place of a counter vector")
	}
}
