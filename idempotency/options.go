package idempotency

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/systembuilderhub/hardening"
)

// Defaults of the options.
const (
	DefaultTTL            = 24 * time.Hour
	DefaultLockTimeout    = 30 * time.Second
	DefaultMaxRequestBody = 1 << 20
	DefaultMaxStoredBody  = 1 << 20
	DefaultReplayHeader   = "Idempotent-Replay"
	DefaultSweepInterval  = time.Minute
	DefaultSweepBatch     = 500
	// HeaderName is the request header carrying the key.
	HeaderName = "Idempotency-Key"
	// BodyOmittedHeader is set to "true" on a replay whose original body
	// was not stored (too large, streamed or hijacked).
	BodyOmittedHeader = "Idempotency-Body-Omitted"
)

// Option configures New. Invalid values make New return an error.
type Option interface{ apply(*config) }

// optionFunc adapts a function to Option.
type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	ttl             time.Duration
	lockTimeout     time.Duration
	methods         map[string]bool
	requireKey      bool
	scope           func(*http.Request) (string, error)
	onError         hardening.ErrorHandler
	maxRequestBody  int64
	maxStoredBody   int
	replayHeaders   []string
	replayHeader    string
	failOpen        bool
	now             func() time.Time
	log             *slog.Logger
	reg             prometheus.Registerer
	sweepInterval   time.Duration
	sweepBatch      int
	storeStatus     func(int) bool
	renewInterval   time.Duration // 0: lockTimeout / 3
	completeBackoff time.Duration // the first wait between Complete tries
	errs            []error
}

func defaults() config {
	return config{
		ttl:             DefaultTTL,
		lockTimeout:     DefaultLockTimeout,
		methods:         map[string]bool{http.MethodPost: true, http.MethodPatch: true},
		maxRequestBody:  DefaultMaxRequestBody,
		maxStoredBody:   DefaultMaxStoredBody,
		replayHeaders:   []string{"Content-Type", "Location", "ETag", "Link"},
		replayHeader:    DefaultReplayHeader,
		scope:           DefaultScope,
		onError:         hardening.WriteError,
		now:             time.Now,
		sweepInterval:   DefaultSweepInterval,
		sweepBatch:      DefaultSweepBatch,
		storeStatus:     DefaultStoreStatus,
		completeBackoff: 20 * time.Millisecond,
	}
}

// DefaultStoreStatus is the default of WithStoreStatus: every 2xx, 3xx and
// 4xx response is stored except 408, 409, 425 and 429, which say "not now,
// retry later" and so must not pin that answer on the key for the TTL. A
// 5xx is never stored, whatever the option says.
func DefaultStoreStatus(status int) bool {
	switch status {
	case http.StatusRequestTimeout, http.StatusConflict, http.StatusTooEarly, http.StatusTooManyRequests:
		return false
	}
	return status < 500
}

// WithStoreStatus decides which response statuses are stored for replay
// (default DefaultStoreStatus). A response that is not stored releases the
// key: the next request with it runs the handler again, so return false
// only for responses of requests that changed nothing, for example a
// refusal by a quota (429, 402) that may pass once the quota allows it, or
// a validation error. 5xx responses are never stored. nil restores the
// default.
func WithStoreStatus(store func(status int) bool) Option {
	return optionFunc(func(c *config) {
		if store == nil {
			store = DefaultStoreStatus
		}
		c.storeStatus = store
	})
}

// WithTTL sets how long a record is kept (default 24h).
func WithTTL(d time.Duration) Option { return optionFunc(func(c *config) { c.ttl = d }) }

// WithLockTimeout sets the lease of an in-flight request (default 30s).
// The middleware renews the lease while the
// handler runs (see WithLeaseRenewal), so other requests with the same key
// get 409 for as long as it runs, however long that is. The lock timeout
// is how long a key stays locked after its process stopped renewing it
// (killed, frozen, or cut off from the store) before another request may
// take over and run.
func WithLockTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) { c.lockTimeout = d })
}

// WithLeaseRenewal sets how often the lease of a running handler is
// renewed (default, and 0: a third of the lock timeout). It must be
// shorter than the lock timeout; a renewal that fails (the store is down)
// is tried again at the next tick, so the lease lapses only when renewals
// fail for a whole lock timeout.
func WithLeaseRenewal(interval time.Duration) Option {
	return optionFunc(func(c *config) { c.renewInterval = interval })
}

// WithMethods sets the methods the middleware applies to (default POST and
// PATCH). Requests with other methods pass through untouched. New refuses
// an empty list and an empty or malformed method name.
func WithMethods(methods ...string) Option {
	return optionFunc(func(c *config) {
		c.methods = make(map[string]bool, len(methods))
		for _, m := range methods {
			if !isToken(m) {
				c.errs = append(c.errs, fmt.Errorf("idempotency: invalid method %q", m))
				continue
			}
			c.methods[strings.ToUpper(m)] = true
		}
	})
}

// WithRequireKey makes a missing Idempotency-Key a 400 instead of a pass
// through.
func WithRequireKey(require bool) Option {
	return optionFunc(func(c *config) { c.requireKey = require })
}

// WithScope replaces DefaultScope, the function that names who is asking:
// records are scoped by its result, so two tenants or users sending the
// same key never see each other's response. Use it when authentication
// does not put a hardening.Caller in the context, or to scope differently
// (per tenant only, say). It runs after authentication, which must come
// before this middleware. An error answers 500
// idempotency_scope_unavailable and the handler does not run. A service
// with a single client and no authentication may return "", nil: every
// request then shares one scope. nil is refused by New.
func WithScope(fn func(r *http.Request) (string, error)) Option {
	return optionFunc(func(c *config) {
		if fn == nil {
			c.errs = append(c.errs, errors.New("idempotency: nil scope function"))
			return
		}
		c.scope = fn
	})
}

// WithErrorHandler sets how the middleware answers a request it does not
// pass to the handler (a missing, invalid, in-flight or reused key, no
// scope, a body too large, the store down). It receives an *Error, which
// implements hardening.Error; the handler must write a response. Headers
// the middleware set before (Retry-After comes from the problem, so a
// custom handler sets it itself) are kept. The default, and nil, is
// hardening.WriteError; hardening.ProblemWriter{TypeBase: ...}.WriteError
// links the problem types to your own documentation.
func WithErrorHandler(h hardening.ErrorHandler) Option {
	return optionFunc(func(c *config) {
		if h == nil {
			h = hardening.WriteError
		}
		c.onError = h
	})
}

// WithMaxRequestBody caps the request body read for the fingerprint
// (default 1 MiB); a larger body is answered 413.
func WithMaxRequestBody(n int64) Option { return optionFunc(func(c *config) { c.maxRequestBody = n }) }

// WithMaxStoredBody caps the response body stored for replays (default
// 1 MiB). A larger response is stored without its body (see
// BodyOmittedHeader).
func WithMaxStoredBody(n int) Option { return optionFunc(func(c *config) { c.maxStoredBody = n }) }

// WithReplayHeaders adds response headers to the replayed allow-list
// (always Content-Type, Location, ETag and Link). Set-Cookie, Date,
// Retry-After and rate-limit headers are refused: New returns an error.
func WithReplayHeaders(names ...string) Option {
	return optionFunc(func(c *config) {
		for _, n := range names {
			n = http.CanonicalHeaderKey(strings.TrimSpace(n))
			if n == "" || neverReplay(n) {
				c.errs = append(c.errs, fmt.Errorf("idempotency: header %q cannot be replayed", n))
				continue
			}
			c.replayHeaders = append(c.replayHeaders, n)
		}
	})
}

func neverReplay(name string) bool {
	n := strings.ToLower(name)
	switch n {
	case "set-cookie", "set-cookie2", "date", "retry-after", "content-length", "transfer-encoding", "connection":
		return true
	}
	return strings.HasPrefix(n, "ratelimit") || strings.HasPrefix(n, "x-ratelimit") || strings.HasPrefix(n, "x-rate-limit")
}

// WithReplayHeaderName sets the header marking a replayed response
// (default "Idempotent-Replay"; Stripe uses "Idempotent-Replayed"). New
// refuses a name that is not a valid header field name.
func WithReplayHeaderName(name string) Option {
	return optionFunc(func(c *config) { c.replayHeader = name })
}

// WithFailOpen makes a store failure run the handler without idempotency
// protection instead of answering 503. Off by default: retries may then
// execute twice.
func WithFailOpen(open bool) Option { return optionFunc(func(c *config) { c.failOpen = open }) }

// WithClock injects the time source (default time.Now).
func WithClock(now func() time.Time) Option { return optionFunc(func(c *config) { c.now = now }) }

// WithLogger sets the logger; nil (the default) discards.
func WithLogger(l *slog.Logger) Option { return optionFunc(func(c *config) { c.log = l }) }

// WithRegisterer registers the middleware's metrics; nil (the default)
// means no metrics.
func WithRegisterer(r prometheus.Registerer) Option { return optionFunc(func(c *config) { c.reg = r }) }

// WithSweep sets how often the sweeper started by Start runs (default 1m)
// and how many records it deletes per store call (default 500).
func WithSweep(interval time.Duration, batch int) Option {
	return optionFunc(func(c *config) { c.sweepInterval, c.sweepBatch = interval, batch })
}

func (c *config) validate() error {
	if len(c.errs) > 0 {
		return c.errs[0]
	}
	seen := make(map[string]bool, len(c.replayHeaders))
	names := c.replayHeaders[:0:0]
	for _, n := range c.replayHeaders {
		if n = http.CanonicalHeaderKey(n); !seen[n] {
			seen[n] = true
			names = append(names, n)
		}
	}
	c.replayHeaders = names
	if c.renewInterval == 0 {
		c.renewInterval = max(c.lockTimeout/3, time.Nanosecond)
	}
	switch {
	case c.ttl <= 0:
		return fmt.Errorf("idempotency: TTL must be positive, got %s", c.ttl)
	case c.lockTimeout <= 0:
		return fmt.Errorf("idempotency: lock timeout must be positive, got %s", c.lockTimeout)
	case c.lockTimeout > c.ttl:
		return fmt.Errorf("idempotency: lock timeout %s exceeds TTL %s", c.lockTimeout, c.ttl)
	case c.maxRequestBody <= 0:
		return fmt.Errorf("idempotency: max request body must be positive")
	case c.maxStoredBody < 0:
		return fmt.Errorf("idempotency: max stored body must not be negative")
	case !isToken(c.replayHeader):
		return fmt.Errorf("idempotency: invalid replay header name %q", c.replayHeader)
	case c.now == nil:
		return fmt.Errorf("idempotency: nil clock")
	case c.renewInterval <= 0 || c.renewInterval >= c.lockTimeout:
		return fmt.Errorf("idempotency: lease renewal interval %s must be positive and shorter than the lock timeout %s", c.renewInterval, c.lockTimeout)
	case c.sweepInterval <= 0 || c.sweepBatch <= 0:
		return fmt.Errorf("idempotency: sweep interval and batch must be positive")
	case len(c.methods) == 0:
		return fmt.Errorf("idempotency: no methods")
	}
	return nil
}

// isToken reports whether s is an RFC 9110 token: a valid method or header
// field name.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := range len(s) {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}
