package tenancy

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/systembuilderhub/hardening"
)

// Options: every constructor of the package takes its own option type, an
// interface, so an option that does not fit a constructor does not compile
// there. An option that fits several constructors (WithLogger,
// WithErrorHandler, WithReason, WithFailOpen) returns a small struct type
// that implements each of their interfaces. Options only record values:
// the constructor checks them and reports an invalid one as an error. A
// nil option is ignored.

// MiddlewareOption configures New.
type MiddlewareOption interface{ applyMiddleware(*middlewareConfig) }

// DBOption configures NewDB.
type DBOption interface{ applyDB(*dbConfig) }

// QuotasOption configures NewQuotas. Quota declarations (Rate,
// Concurrency, Budget) are QuotasOptions too.
type QuotasOption interface{ applyQuotas(*quotasConfig) }

type middlewareConfig struct {
	log         *slog.Logger
	header      string
	trusted     func(*http.Request) bool
	identity    func(*http.Request) (string, error)
	identitySet bool
	onError     hardening.ErrorHandler
}

type dbConfig struct {
	log     *slog.Logger
	routine map[string]bool // reasons of routine cross-tenant access
}

type quotasConfig struct {
	log     *slog.Logger
	reg     prometheus.Registerer
	gauges  []ID
	now     func() time.Time
	nowSet  bool
	onError hardening.ErrorHandler
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

// WithIdentity sets how the middleware finds the request's tenant,
// instead of the Tenant of the context's hardening.Caller: for example the
// claim of a token an earlier middleware verified. The function returns
// "" when the request carries no tenant and an error when the identity
// cannot be established; both answer 401 tenant_required. nil is an error.
func WithIdentity(identity func(r *http.Request) (string, error)) MiddlewareOption {
	return middlewareOption(func(c *middlewareConfig) { c.identity, c.identitySet = identity, true })
}

// WithClock sets the clock of the quotas (default time.Now): leases,
// reservations, budget periods and the GCRA. Redis stores use Redis TIME
// for rates whatever this clock says. nil is an error.
func WithClock(now func() time.Time) QuotasOption {
	return quotasOption(func(c *quotasConfig) { c.now, c.nowSet = now, true })
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

// ErrorHandlerOption is the option WithErrorHandler returns: a
// MiddlewareOption and a QuotasOption.
type ErrorHandlerOption struct{ h hardening.ErrorHandler }

func (o ErrorHandlerOption) applyMiddleware(c *middlewareConfig) { c.onError = o.h }
func (o ErrorHandlerOption) applyQuotas(c *quotasConfig)         { c.onError = o.h }

// WithErrorHandler sets how the tenant middleware (New) or the quota
// middlewares (RateLimit, ConcurrencyLimit of NewQuotas) answer a refusal
// or a failure; nil, like the default, means hardening.WriteError
// (problem+json). The handler receives the typed error (*TenantError,
// *Rejection, *UnavailableError, ErrNoTenant), each a hardening.Error;
// RateLimit sets the RateLimit and RateLimit-Policy header fields before
// calling it. Pass hardening.ProblemWriter{TypeBase: ...}.WriteError to
// link the problem types to your own documentation.
func WithErrorHandler(h hardening.ErrorHandler) ErrorHandlerOption {
	return ErrorHandlerOption{h: h}
}
