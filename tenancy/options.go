package tenancy

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Option configures New, NewDB and NewQuotas. Each constructor reads the
// options that concern it and ignores the others, so one option list can
// be shared.
type Option func(*config)

type config struct {
	log        *slog.Logger
	now        func() time.Time
	reg        prometheus.Registerer
	header     string
	trusted    func(*http.Request) bool
	defaults   Limits
	defaultsOK bool
	failOpen   map[Resource]bool
	leaseTTL   time.Duration
	resTTL     time.Duration
	gauges     []ID
}

func newConfig(opts []Option) *config {
	c := &config{
		now:      time.Now,
		defaults: DefaultLimits(),
		failOpen: map[Resource]bool{},
		leaseTTL: DefaultLeaseTTL,
		resTTL:   DefaultReservationTTL,
	}
	for _, o := range opts {
		if o != nil {
			o(c)
		}
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.now == nil {
		c.now = time.Now
	}
	return c
}

// WithLogger sets the structured logger; nil (the default) discards.
// Refused requests, cross-tenant database access, quota changes and
// fail-open decisions are logged.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.log = l } }

// WithClock sets the clock quotas use for leases, reservations and the
// budget month (default time.Now). Redis stores use Redis TIME for the
// snapshot rate whatever this clock says.
func WithClock(now func() time.Time) Option { return func(c *config) { c.now = now } }

// WithRegisterer registers the quota metrics on reg; nil (the default)
// means no metrics.
func WithRegisterer(reg prometheus.Registerer) Option { return func(c *config) { c.reg = reg } }

// WithTrustedHeader makes the middleware accept the tenant from header
// (usually HeaderTenantID) when trusted(r) reports that the request came
// through a hop the caller trusts, for example a gateway on a private
// network or with a verified mTLS client certificate. The header is used
// only when the identity carries no tenant; when both are present and
// differ the request is refused (403). Without this option the header is
// ignored, whatever its value.
func WithTrustedHeader(header string, trusted func(r *http.Request) bool) Option {
	return func(c *config) {
		c.header = http.CanonicalHeaderKey(header)
		c.trusted = trusted
	}
}

// WithDefaults sets the limits a tenant without overrides gets (default
// DefaultLimits, or the environment through ConfigFromEnv).
func WithDefaults(l Limits) Option {
	return func(c *config) { c.defaults = l; c.defaultsOK = true }
}

// WithFailOpen makes the listed resources allow requests when the store is
// unreachable (the failure is logged and counted). Without it every quota
// fails closed: the store's error is returned and answers 503.
func WithFailOpen(resources ...Resource) Option {
	return func(c *config) {
		for _, r := range resources {
			c.failOpen[r] = true
		}
	}
}

// WithLeaseTTL sets how long an active-preview slot stays held without
// renewal (default DefaultLeaseTTL).
func WithLeaseTTL(d time.Duration) Option { return func(c *config) { c.leaseTTL = d } }

// WithReservationTTL sets how long an unsettled LLM budget reservation
// holds its money before it expires and is returned (default
// DefaultReservationTTL). It must exceed the slowest model call.
func WithReservationTTL(d time.Duration) Option { return func(c *config) { c.resTTL = d } }

// WithUsageGauges exports per-tenant usage gauges
// (hardening_quota_usage{tenant,resource}) for exactly the listed tenants,
// read from the store at scrape time. Tenant ids are never used as labels
// otherwise, so cardinality stays bounded by this list.
func WithUsageGauges(tenants ...ID) Option {
	return func(c *config) { c.gauges = append(c.gauges, tenants...) }
}
