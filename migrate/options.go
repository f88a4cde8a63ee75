package migrate

import (
	"io/fs"
	"log/slog"
	"time"

	"github.com/systembuilderhub/hardening"
)

// Options: each constructor of the package takes its own option type, an
// interface, so an option that does not fit a constructor does not compile
// there. New (and Up, StatusOf, Enforce) take Option; ReadinessHandler
// takes ReadinessOption. WithClock fits both. An option never fails on its
// own: the constructor reports invalid values.

// Option configures New (and the package functions Up, StatusOf and
// Enforce, which call it).
type Option interface{ apply(*config) }

// ReadinessOption configures Migrator.ReadinessHandler.
type ReadinessOption interface{ applyReadiness(*readinessConfig) }

type config struct {
	dialect Dialect
	sets    []Set
	noKit   bool
	log     *slog.Logger
	now     func() time.Time
	lockTTL time.Duration
}

type readinessConfig struct {
	ttl     time.Duration
	timeout time.Duration
	checks  []Check
	now     func() time.Time
	onError hardening.ErrorHandler
}

type option func(*config)

func (o option) apply(c *config) { o(c) }

type readinessOption func(*readinessConfig)

func (o readinessOption) applyReadiness(c *readinessConfig) { o(c) }

// WithDialect selects the SQL dialect, SQLite or Postgres. By default New
// follows the handle's driver name ("sqlite3": SQLite; "pgx", "pgx/v5",
// "postgres": Postgres) and reports any other driver as
// ErrInvalidMigrations naming it; WithDialect is then required (for
// example for a driver registered under another name). New reports an
// unknown dialect as ErrInvalidMigrations.
func WithDialect(d Dialect) Option { return option(func(c *config) { c.dialect = d }) }

// WithSet registers an application migration set beside the kit's. name
// must be unique and not "kit"; fsys holds NNNN_name.sql files at its root.
// New reports a set with no such files as ErrInvalidMigrations: an FS from
// //go:embed keeps its directory, so pass fs.Sub(embedded, "dir").
func WithSet(name string, fsys fs.FS) Option {
	return option(func(c *config) { c.sets = append(c.sets, Set{Name: name, FS: fsys}) })
}

// WithoutKitMigrations leaves the kit's own set out, for applications (and
// tests) that run only their own sets through this runner.
func WithoutKitMigrations() Option { return option(func(c *config) { c.noKit = true }) }

// WithLogger sets the logger; nil (the default) discards.
func WithLogger(l *slog.Logger) Option { return option(func(c *config) { c.log = l }) }

// WithLockTTL sets how long the SQLite migration lock is held before
// another process may consider its holder dead and take it (default 10
// minutes). The holder refreshes it after every migration. On Postgres the
// lock is a session-level advisory lock that the server releases when its
// holder's connection ends, so the TTL does not apply there. New reports a
// duration that is not positive.
func WithLockTTL(d time.Duration) Option { return option(func(c *config) { c.lockTTL = d }) }

// ClockOption is the option WithClock returns: an Option and a
// ReadinessOption.
type ClockOption struct{ now func() time.Time }

// WithClock injects the time source (default time.Now): of New, for
// applied_at and the lock's expiry; of ReadinessHandler, for the age of a
// cached verdict (default: the Migrator's clock). nil is an error from the
// constructor.
func WithClock(now func() time.Time) ClockOption { return ClockOption{now: now} }

func (o ClockOption) apply(c *config)                   { c.now = o.now }
func (o ClockOption) applyReadiness(c *readinessConfig) { c.now = o.now }

// CacheFor sets how long a verdict is reused (default 2s), so a busy
// probe does not query the database on every call; 0 computes a verdict
// per request. ReadinessHandler reports a negative duration.
func CacheFor(d time.Duration) ReadinessOption {
	return readinessOption(func(c *readinessConfig) { c.ttl = d })
}

// WithCheck adds a dependency check run after the database and schema.
// ReadinessHandler reports a check without a Name or a Func.
func WithCheck(ch Check) ReadinessOption {
	return readinessOption(func(c *readinessConfig) { c.checks = append(c.checks, ch) })
}

// CheckTimeout bounds each verdict's work (default 2s). ReadinessHandler
// reports a duration that is not positive.
func CheckTimeout(d time.Duration) ReadinessOption {
	return readinessOption(func(c *readinessConfig) { c.timeout = d })
}

// WithErrorHandler replaces how the readiness handler answers when the
// service is not ready (default hardening.WriteError: 503
// application/problem+json). The handler receives a *NotReadyError; it
// must write a response. ReadinessHandler reports nil.
func WithErrorHandler(h hardening.ErrorHandler) ReadinessOption {
	return readinessOption(func(c *readinessConfig) { c.onError = h })
}
