package tenancy

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Options: every constructor of the package takes its own option type, an
// interface, so an option that does not fit a constructor does not compile
// there. An option that fits several constructors (WithLogger, WithReason,
// WithFailOpen) implements each of their interfaces.

// MiddlewareOption configures New.
type MiddlewareOption interface{ applyMiddleware(*middlewareConfig) }

// DBOption configures NewDB.
type DBOption interface{ applyDB(*dbConfig) }

// QuotasOption configures NewQuotas. Quota declarations (Rate,
// Concurrency, Budget) are QuotasOptions too.
type QuotasOption interface{ applyQuotas(*quotasConfig) }

type middlewareConfig struct {
	log     *slog.Logger
	header  string
	trusted func(*http.Request) bool
}

type dbConfig struct {
	log     *slog.Logger
	routine map[string]bool // reasons of routine cross-tenant access
}

type quotasConfig struct {
	log     *slog.Logger
	now     func() time.Time
	reg     prometheus.Registerer
	gauges  []ID
	onError func(http.ResponseWriter, *http.Request, error)
	quotas  []Quota
}

type middlewareOption func(*middlewareConfig)

func (o middlewareOption) applyMiddleware(c *middlewareConfig) { o(c) }

type quotasOption func(*quotasConfig)

func (o quotasOption) applyQuotas(c *quotasConfig) { o(c) }

// LoggerOption is the option of WithLogger; it fits New, NewDB and
// NewQuotas.
type LoggerOption struct{ l *slog.Logger }

func (o LoggerOption) applyMiddleware(c *middlewareConfig) { c.log = o.l }
func (o LoggerOption) applyDB(c *dbConfig)                 { c.log = o.l }
func (o LoggerOption) applyQuotas(c *quotasConfig)         { c.log = o.l }

// WithLogger sets the structured logger of New, NewDB or NewQuotas; nil
// (the default) discards. Refused requests, cross-tenant database access,
// quota changes and fail-open decisions are logged.
func WithLogger(l *slog.Logger) LoggerOption { return LoggerOption{l: l} }

func discardIfNil(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}

// WithTrustedHeader makes the middleware accept the tenant from header
// (usually HeaderTenantID) when trusted(r) reports that the request came
// through a hop the caller trusts, for example a gateway on a private
// network or with a verified mTLS client certificate. The header is used
// only when the identity carries no tenant; when both are present and
// differ the request is refused (403). Without this option the header is
// ignored, whatever its value.
func WithTrustedHeader(header string, trusted func(r *http.Request) bool) MiddlewareOption {
	return middlewareOption(func(c *middlewareConfig) {
		c.header = http.CanonicalHeaderKey(header)
		c.trusted = trusted
	})
}

// WithClock sets the clock of the quotas (default time.Now): leases,
// reservations, budget periods and the GCRA. Redis stores use Redis TIME
// for rates whatever this clock says, unless built with
// redisstore.WithRequestTime.
func WithClock(now func() time.Time) QuotasOption {
	return quotasOption(func(c *quotasConfig) { c.now = now })
}

// WithRegisterer registers the quota metrics on reg; nil (the default)
// means no metrics.
func WithRegisterer(reg prometheus.Registerer) QuotasOption {
	return quotasOption(func(c *quotasConfig) { c.reg = reg })
}

// WithUsageGauges exports per-tenant usage gauges
// (hardening_quota_usage{tenant,quota}) for exactly the listed tenants,
// read from the store at scrape time. Tenant ids are never used as labels
// otherwise, so cardinality stays bounded by this list.
func WithUsageGauges(tenants ...ID) QuotasOption {
	return quotasOption(func(c *quotasConfig) { c.gauges = append(c.gauges, tenants...) })
}

// WithErrorHandler sets how the quota middlewares (RateLimit,
// ConcurrencyLimit) answer a refusal or a failure; the default is
// WriteError (problem+json).
func WithErrorHandler(h func(w http.ResponseWriter, r *http.Request, err error)) QuotasOption {
	return quotasOption(func(c *quotasConfig) { c.onError = h })
}
