package idempotency

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/systembuilderhub/hardening/internal/background"
)

// Middleware makes handlers safe to retry with an Idempotency-Key header.
// Build it with New, wrap handlers with Handler, and (for stores that need
// it) run the sweeper with Start and Close. It is safe for concurrent use.
type Middleware struct {
	store     Store
	cfg       config
	log       *slog.Logger
	metrics   *metrics
	replayKey string // cfg.replayHeader in canonical form

	sweeper   background.Loop
	mu        sync.Mutex // guards lastSweep and lastDel
	lastSweep time.Time
	lastDel   int
}

// New returns a Middleware keeping its records in store.
func New(store Store, opts ...Option) (*Middleware, error) {
	if store == nil {
		return nil, errors.New("idempotency: nil store")
	}
	cfg := defaults()
	for _, o := range opts {
		if o == nil {
			return nil, errors.New("idempotency: nil option")
		}
		o.apply(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	log := cfg.log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	met, err := newMetrics(cfg.reg)
	if err != nil {
		return nil, fmt.Errorf("idempotency: register metrics: %w", err)
	}
	return &Middleware{store: store, cfg: cfg, log: log, metrics: met, replayKey: http.CanonicalHeaderKey(cfg.replayHeader)}, nil
}

// TTL returns the configured record TTL.
func (m *Middleware) TTL() time.Duration { return m.cfg.ttl }

// LockTimeout returns the configured lease.
func (m *Middleware) LockTimeout() time.Duration { return m.cfg.lockTimeout }

// Handler wraps next. For a request whose method is covered and that
// carries an Idempotency-Key, next runs at most once per key and scope
// until the record expires; other requests with that key get the stored
// response (with the replay header), a 409 while the first is in flight,
// or a 422 when their method, path or body differ.
func (m *Middleware) Handler(next http.Handler) http.Handler {
	if next == nil {
		panic("idempotency: nil handler")
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.serve(w, r, next)
	})
}

func (m *Middleware) count(outcome string) { m.metrics.outcome[outcome].Inc() }

func (m *Middleware) serve(w http.ResponseWriter, r *http.Request, next http.Handler) {
	if !m.cfg.methods[r.Method] {
		next.ServeHTTP(w, r)
		return
	}
	values := r.Header.Values(HeaderName)
	if len(values) == 0 {
		m.count(OutcomeMissing)
		if m.cfg.requireKey {
			m.fail(w, r, &Error{Reason: ReasonKeyMissing})
			return
		}
		next.ServeHTTP(w, r)
		return
	}
	key, err := ParseKey(values[0])
	if len(values) > 1 || err != nil {
		m.count(OutcomeInvalid)
		if err == nil {
			err = errors.New("idempotency: more than one Idempotency-Key header")
		}
		m.fail(w, r, &Error{Reason: ReasonKeyInvalid, Err: err})
		return
	}
	scope, err := m.cfg.scope(r)
	if err != nil {
		m.count(OutcomeError)
		m.log.ErrorContext(r.Context(), "idempotency scope failed", "error", err)
		m.fail(w, r, &Error{Reason: ReasonScopeUnavailable, Err: err})
		return
	}
	body, err := readBody(w, r, m.cfg.maxRequestBody)
	if err != nil {
		m.count(OutcomeInvalid)
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			m.fail(w, r, &Error{Reason: ReasonBodyTooLarge, Limit: m.cfg.maxRequestBody, Err: err})
			return
		}
		m.fail(w, r, &Error{Reason: ReasonInvalidBody, Err: err})
		return
	}
	path := r.URL.EscapedPath()
	target := path
	if r.URL.RawQuery != "" {
		target += "?" + r.URL.RawQuery
	}
	now := m.cfg.now()
	req := ClaimRequest{
		Key:         ScopedKey(scope, r.Method, path, key),
		Fingerprint: Fingerprint(r.Method, target, body),
		Owner:       newOwner(),
		Now:         now,
		LockTimeout: m.cfg.lockTimeout,
		TTL:         m.cfg.ttl,
	}
	res, err := m.store.Claim(r.Context(), req)
	if err != nil {
		m.storeFailed(w, r, next, "claim", err)
		return
	}
	switch res.Status {
	case Completed:
		m.count(OutcomeReplay)
		m.replay(w, res.Record)
	case InFlight:
		m.count(OutcomeConflict)
		wait := max(res.LeaseExpiresAt.Sub(now), time.Second)
		m.fail(w, r, &Error{Reason: ReasonKeyInFlight, RetryAfter: wait})
	case Mismatch:
		m.count(OutcomeMismatch)
		m.fail(w, r, &Error{Reason: ReasonKeyReused})
	case Claimed:
		m.count(OutcomeFirst)
		if res.TookOver {
			m.log.WarnContext(r.Context(), "idempotency lease taken over after expiry", "path", path)
		}
		m.run(w, r, next, req)
	default:
		m.storeFailed(w, r, next, "claim", fmt.Errorf("unknown claim status %d", res.Status))
	}
}

func (m *Middleware) storeFailed(w http.ResponseWriter, r *http.Request, next http.Handler, op string, err error) {
	m.count(OutcomeError)
	m.log.ErrorContext(r.Context(), "idempotency store failed", "op", op, "error", err, "fail_open", m.cfg.failOpen)
	if m.cfg.failOpen {
		next.ServeHTTP(w, r)
		return
	}
	m.fail(w, r, &Error{Reason: ReasonStoreUnavailable, RetryAfter: time.Second, Err: err})
}

// fail answers r with err through the error handler.
func (m *Middleware) fail(w http.ResponseWriter, r *http.Request, err *Error) {
	m.cfg.onError(w, r, err)
}

func (m *Middleware) run(w http.ResponseWriter, r *http.Request, next http.Handler, req ClaimRequest) {
	rec := &recorder{ResponseWriter: w, allowed: m.cfg.replayHeaders, max: m.cfg.maxStoredBody}
	// The store calls outlive a cancelled client: the outcome must be
	// recorded (or the lease released) whatever happened to the request.
	ctx := context.WithoutCancel(r.Context())
	lease := m.keepLease(ctx, req)
	finished := false
	defer func() {
		if finished {
			return
		}
		// The handler panicked (or called runtime.Goexit): free the key
		// for a retry, then re-raise.
		lease.stop()
		m.release(ctx, req)
		if v := recover(); v != nil {
			panic(v)
		}
	}()
	next.ServeHTTP(rec, r)
	finished = true
	lease.stop()
	out := rec.record()
	if out.StatusCode >= 500 || !m.cfg.storeStatus(out.StatusCode) {
		m.release(ctx, req)
		return
	}
	// A lost Complete would let a retry run the operation again once the
	// lease expires: try a few times before giving up. The back-off ends
	// with the request's context; the remaining tries then follow at once.
	var ok bool
	var err error
	for attempt := range completeAttempts {
		if attempt > 0 {
			sleep(r.Context(), time.Duration(attempt)*m.cfg.completeBackoff)
		}
		ok, err = m.store.Complete(ctx, CompleteRequest{Key: req.Key, Owner: req.Owner, Record: out, Now: m.cfg.now(), TTL: m.cfg.ttl})
		if err == nil {
			break
		}
	}
	switch {
	case err != nil:
		m.log.ErrorContext(ctx, "idempotency complete failed; the lease will expire", "error", err)
	case !ok:
		m.metrics.fenced.Inc()
		m.log.WarnContext(ctx, "idempotency response not stored: lease lost to another request", "path", r.URL.Path)
	}
}

// completeAttempts bounds the tries to store a response.
const completeAttempts = 3

// sleep waits for d or until ctx ends, whichever comes first.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func (m *Middleware) release(ctx context.Context, req ClaimRequest) {
	if _, err := m.store.Release(ctx, req.Key, req.Owner); err != nil {
		m.log.ErrorContext(ctx, "idempotency release failed; the lease will expire", "error", err)
	}
}

func (m *Middleware) replay(w http.ResponseWriter, rec *Record) {
	h := w.Header()
	// The stored values and the replay markers share one array.
	n := 2
	for _, vs := range rec.Header {
		n += len(vs)
	}
	vals := make([]string, 0, n)
	for k, vs := range rec.Header {
		vals = setValues(h, k, vals, vs...)
	}
	vals = setValues(h, m.replayKey, vals, "true")
	if rec.BodyOmitted {
		setValues(h, BodyOmittedHeader, vals, "true")
	}
	if rec.StatusCode != http.StatusNoContent && rec.StatusCode != http.StatusNotModified {
		h.Set("Content-Length", strconv.Itoa(len(rec.Body)))
	}
	w.WriteHeader(rec.StatusCode)
	if !rec.BodyOmitted {
		_, _ = w.Write(rec.Body)
	}
}

// setValues appends vs to vals and sets h[k] to them (capped, so that an
// append to one header never writes into the next); it returns vals.
func setValues(h http.Header, k string, vals []string, vs ...string) []string {
	vals = append(vals, vs...)
	h[k] = vals[len(vals)-len(vs) : len(vals) : len(vals)]
	return vals
}

// readBody reads the whole body (up to limit) and gives the handler a fresh
// reader over the same bytes.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	mr := http.MaxBytesReader(w, r.Body, limit)
	var body []byte
	var err error
	if n := r.ContentLength; n >= 0 && n <= limit {
		// Known length: one exact allocation, then check the body ends.
		body = make([]byte, n)
		if _, err = io.ReadFull(mr, body); err == nil {
			var one [1]byte
			switch k, rerr := io.ReadFull(mr, one[:]); {
			case k == 1: // longer than announced
				var rest []byte
				rest, err = io.ReadAll(mr)
				body = append(append(body, one[0]), rest...)
			case rerr != io.EOF:
				err = rerr
			}
		}
	} else {
		body, err = io.ReadAll(mr)
	}
	_ = r.Body.Close()
	if err != nil {
		return nil, err
	}
	rb := &replayBody{}
	rb.Reset(body)
	r.Body = rb
	return body, nil
}

// replayBody gives the handler the body the middleware read: a
// bytes.Reader that closes (one allocation where io.NopCloser over
// bytes.NewReader costs two).
type replayBody struct{ bytes.Reader }

// Close implements io.Closer; it does nothing.
func (*replayBody) Close() error { return nil }

func newOwner() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	var out [32]byte
	hex.Encode(out[:], b[:])
	return string(out[:])
}
