package tenancy

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func (q *Quotas) register() error {
	q.checks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hardening_quota_checks_total",
		Help: "Quota checks made, by resource (active_previews, snapshots, llm_budget).",
	}, []string{"resource"})
	q.rejections = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hardening_quota_rejections_total",
		Help: "Quota checks refused because the tenant was over its limit, by resource.",
	}, []string{"resource"})
	q.storeErrs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hardening_quota_store_errors_total",
		Help: "Quota checks whose store failed, by resource.",
	}, []string{"resource"})
	for _, r := range []Resource{ResourceActivePreviews, ResourceSnapshots, ResourceLLMBudget} {
		q.checks.WithLabelValues(string(r))
		q.rejections.WithLabelValues(string(r))
		q.storeErrs.WithLabelValues(string(r))
	}
	if q.c.reg == nil {
		return nil
	}
	var err error
	if q.checks, err = registerVec(q.c.reg, q.checks); err != nil {
		return err
	}
	if q.rejections, err = registerVec(q.c.reg, q.rejections); err != nil {
		return err
	}
	if q.storeErrs, err = registerVec(q.c.reg, q.storeErrs); err != nil {
		return err
	}
	if len(q.c.gauges) > 0 {
		if err := q.c.reg.Register(&usageCollector{q: q}); err != nil {
			return err
		}
	}
	return nil
}

// registerVec registers v, reusing an identical collector already there
// (two Quotas on one registry share the counters).
func registerVec(reg prometheus.Registerer, v *prometheus.CounterVec) (*prometheus.CounterVec, error) {
	if err := reg.Register(v); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
				return existing, nil
			}
		}
		return nil, err
	}
	return v, nil
}

var usageDesc = prometheus.NewDesc("hardening_quota_usage",
	"Current quota usage of the tenants the service listed (WithUsageGauges), by resource; the budget in USD.",
	[]string{"tenant", "resource"}, nil)

// usageCollector reads usage of the opted-in tenants at scrape time.
type usageCollector struct{ q *Quotas }

func (u *usageCollector) Describe(ch chan<- *prometheus.Desc) { ch <- usageDesc }

func (u *usageCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, t := range u.q.c.gauges {
		us, err := u.q.Usage(ctx, t)
		if err != nil {
			continue
		}
		ch <- prometheus.MustNewConstMetric(usageDesc, prometheus.GaugeValue, float64(us.ActivePreviews), string(t), string(ResourceActivePreviews))
		ch <- prometheus.MustNewConstMetric(usageDesc, prometheus.GaugeValue, float64(us.SnapshotsLastMinute), string(t), string(ResourceSnapshots))
		ch <- prometheus.MustNewConstMetric(usageDesc, prometheus.GaugeValue, (us.LLMSpent + us.LLMReserved).USD(), string(t), string(ResourceLLMBudget))
	}
}
