package tenancy

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/systembuilderhub/hardening/internal/promreg"
)

// register builds the quota counters, labelled by declared quota name (so
// bounded), registers them on the configured registerer, and gives every
// declared quota its children.
func (q *Quotas) register() error {
	vec := func(name, help string) (*prometheus.CounterVec, error) {
		v := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, []string{"quota"})
		if q.reg == nil {
			return v, nil
		}
		return promreg.Register(q.reg, v)
	}
	checks, err := vec("hardening_quota_checks_total", "Quota checks made, by declared quota name.")
	if err != nil {
		return err
	}
	rejections, err := vec("hardening_quota_rejections_total", "Quota checks refused because the tenant was over its limit, by quota.")
	if err != nil {
		return err
	}
	storeErrs, err := vec("hardening_quota_store_errors_total", "Quota checks whose store failed, by quota.")
	if err != nil {
		return err
	}
	for _, s := range q.order {
		s.checks = checks.WithLabelValues(s.name)
		s.rejections = rejections.WithLabelValues(s.name)
		s.storeErrs = storeErrs.WithLabelValues(s.name)
	}
	if q.reg != nil && len(q.gauges) > 0 {
		return q.reg.Register(&usageCollector{q: q})
	}
	return nil
}

var usageDesc = prometheus.NewDesc("hardening_quota_usage",
	"Current quota usage of the tenants the service listed (WithUsageGauges), by quota: units of a rate's burst in use, "+
		"slots held, or a budget's spent + reserved (in its currency with WithCurrency).",
	[]string{"tenant", "quota"}, nil)

// usageCollector reads usage of the opted-in tenants at scrape time.
type usageCollector struct{ q *Quotas }

func (u *usageCollector) Describe(ch chan<- *prometheus.Desc) { ch <- usageDesc }

func (u *usageCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, t := range u.q.gauges {
		us, err := u.q.Usage(ctx, t)
		if err != nil {
			continue
		}
		for _, s := range u.q.order {
			qu := us[s.name]
			v := float64(qu.Used + qu.Reserved)
			if s.currency != "" {
				v /= float64(s.perUnit)
			}
			ch <- prometheus.MustNewConstMetric(usageDesc, prometheus.GaugeValue, v, string(t), s.name)
		}
	}
}
