package flags

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Defaults of the client's options.
const (
	// DefaultPollInterval is how often the client checks the store's
	// version: the longest a change made by another replica takes to reach
	// this replica's cache when no notification arrives.
	DefaultPollInterval = 250 * time.Millisecond
	// DefaultMaxStaleness is how long the cache keeps serving stored values
	// while the store cannot be reached; after it, flags evaluate to their
	// registered defaults until the store answers again.
	DefaultMaxStaleness = 30 * time.Second
)

type config struct {
	now          func() time.Time
	log          *slog.Logger
	reg          prometheus.Registerer
	pollInterval time.Duration
	maxStaleness time.Duration
	flags        []Flag
	tenant       func(context.Context) string
	tenantSet    bool // WithTenantFrom was given (nil is then an error)
}

// Option configures New, the package's only constructor: an interface with
// an unexported method, as every option of the kit; each With function
// here returns one. A nil option is ignored; New reports invalid values.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// WithClock sets the clock used for audit timestamps and staleness; nil
// means time.Now.
func WithClock(now func() time.Time) Option { return optionFunc(func(c *config) { c.now = now }) }

// WithLogger sets the logger for toggles and store failures; nil discards.
func WithLogger(l *slog.Logger) Option { return optionFunc(func(c *config) { c.log = l }) }

// WithRegisterer registers the client's metrics (hardening_flags_*) with r;
// nil means no metrics. Several clients may share one registerer: they
// share the collectors.
func WithRegisterer(r prometheus.Registerer) Option {
	return optionFunc(func(c *config) { c.reg = r })
}

// WithPollInterval sets how often the store's version is checked
// (default DefaultPollInterval). It bounds how stale the cache can be while
// the store is reachable, whether or not change notifications arrive. It
// must be positive.
func WithPollInterval(d time.Duration) Option {
	return optionFunc(func(c *config) { c.pollInterval = d })
}

// WithMaxStaleness sets how long stored values keep being served while the
// store cannot be reached (default DefaultMaxStaleness); it must be at least
// the poll interval.
func WithMaxStaleness(d time.Duration) Option {
	return optionFunc(func(c *config) { c.maxStaleness = d })
}

// WithFlags registers flags, as Client.Register does.
func WithFlags(flags ...Flag) Option {
	return optionFunc(func(c *config) { c.flags = append(c.flags, flags...) })
}

// WithTenantFrom replaces where the context forms (EvaluateContext,
// EnabledContext, ListContext, Handle.EvaluateContext) find the tenant:
// fn returns the tenant of ctx, empty for none. The default is the tenant
// of the verified caller, hardening.CallerFrom(ctx).Tenant; use this
// adapter when the application keeps the tenant elsewhere in the context
// (tenancy.FromContext, say). fn runs on every such evaluation: it must be
// fast and must not allocate if evaluation is to stay allocation-free. nil
// is an error.
func WithTenantFrom(fn func(ctx context.Context) string) Option {
	return optionFunc(func(c *config) { c.tenant, c.tenantSet = fn, true })
}

func newConfig(opts []Option) (config, error) {
	cfg := config{pollInterval: DefaultPollInterval, maxStaleness: DefaultMaxStaleness}
	for _, o := range opts {
		if o != nil {
			o.apply(&cfg)
		}
	}
	if cfg.now == nil {
		cfg.now = time.Now
	}
	if cfg.log == nil {
		cfg.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.tenantSet && cfg.tenant == nil {
		return cfg, errors.New("flags: nil tenant function (WithTenantFrom)")
	}
	if cfg.tenant == nil {
		cfg.tenant = callerTenant
	}
	if cfg.pollInterval <= 0 {
		return cfg, fmt.Errorf("flags: poll interval must be positive, got %v", cfg.pollInterval)
	}
	if cfg.maxStaleness < cfg.pollInterval {
		return cfg, fmt.Errorf("flags: max staleness %v is shorter than the poll interval %v", cfg.maxStaleness, cfg.pollInterval)
	}
	return cfg, nil
}
