package tenancy

import (
	"context"
	"net/http"
	"sync"
	"time"
)

// RateLimit returns middleware that takes one unit of the rate name for the
// request's tenant before calling next: every answer carries the RateLimit
// header fields, and a refusal is answered by the error handler (default
// WriteError: 429 problem+json with Retry-After) without calling next. The
// tenant must already be in the context (Middleware.Handler runs first).
//
// Like http.ServeMux.Handle with a bad pattern, it panics when name is not
// a declared rate: the wiring is wrong, and no request should pass
// unchecked.
func (q *Quotas) RateLimit(name string) func(http.Handler) http.Handler {
	if _, err := q.lookup(name, KindRate); err != nil {
		panic(err)
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			res, err := q.Allow(r.Context(), name)
			SetRateLimitHeaders(w.Header(), res)
			if err != nil {
				q.onError(w, r, err)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// ConcurrencyLimit returns middleware that holds a slot of the concurrency
// quota name for the request's tenant while next runs: it acquires the
// slot (a refusal is answered by the error handler, default WriteError:
// 429, without calling next), renews its lease every third of the lease
// time until next returns, then releases it. If the process dies, the
// lease frees the slot. The tenant must already be in the context.
//
// It panics when name is not a declared concurrency quota (see RateLimit).
func (q *Quotas) ConcurrencyLimit(name string) func(http.Handler) http.Handler {
	s, err := q.lookup(name, KindConcurrency)
	if err != nil {
		panic(err)
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx := r.Context()
			holder := newReservationID()
			if _, err := q.Acquire(ctx, name, holder); err != nil {
				q.onError(w, r, err)
				return
			}
			stop := q.renewWhileRunning(ctx, s, holder)
			defer func() {
				stop()
				rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.lease)
				defer cancel()
				if _, err := q.Release(rctx, name, holder); err != nil {
					q.log.ErrorContext(ctx, "tenancy: release slot; its lease frees it", "quota", name, "error", err)
				}
			}()
			next.ServeHTTP(w, r)
		})
	}
}

// renewWhileRunning renews holder's slot every third of the lease until
// the returned stop is called or the store reports the slot lost; each
// renewal is bounded by that period. stop waits for the renewer to end.
func (q *Quotas) renewWhileRunning(ctx context.Context, s *quotaState, holder string) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		period := max(s.lease/3, time.Millisecond)
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				// Detached from the client (a hang-up must not free the
				// slot early) but bounded: a hung store cannot hold the
				// request's cleanup past one renewal period.
				rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), period)
				res, err := q.Renew(rctx, s.name, holder)
				cancel()
				switch {
				case err != nil:
					q.log.ErrorContext(ctx, "tenancy: renew slot", "quota", s.name, "error", err)
				case !res.Held:
					q.log.WarnContext(ctx, "tenancy: slot lost while the request runs; renewal stops", "quota", s.name)
					return
				}
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}
