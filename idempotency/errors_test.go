package idempotency_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening"
	"github.com/systembuilderhub/hardening/idempotency"
	"github.com/systembuilderhub/hardening/idempotency/storetest"
)

// errorCase makes the middleware answer with one kind of error.
type errorCase struct {
	reason string
	opts   []idempotency.Option
	store  idempotency.Store // nil: a memory store
	body   string
	key    string // "-": none
	broken bool   // the body cannot be read
	// busy holds the key "k" in flight while the request is sent.
	busy bool
	// prior is a body sent with key "k" (and completed) first.
	prior string
	// status, body and Retry-After of the default answer, byte for byte.
	status     int
	want       string
	retryAfter string
}

var errorCases = []errorCase{
	{reason: idempotency.ReasonKeyMissing, key: "-", opts: []idempotency.Option{idempotency.WithRequireKey(true)}, status: 400,
		want: `{"detail":"this endpoint requires an Idempotency-Key header","instance":"/things","reason":"idempotency_key_missing","status":400,"title":"Bad Request","type":"https://github.com/systembuilderhub/hardening/blob/main/docs/problems.md#idempotency_key_missing"}`},
	{reason: idempotency.ReasonKeyInvalid, key: `"open`, status: 400,
		want: `{"detail":"Idempotency-Key must be one quoted string or token of 1 to 255 visible ASCII characters","instance":"/things","max_length":255,"reason":"idempotency_key_invalid","status":400,"title":"Bad Request","type":"https://github.com/systembuilderhub/hardening/blob/main/docs/problems.md#idempotency_key_invalid"}`},
	{reason: idempotency.ReasonScopeUnavailable, opts: []idempotency.Option{idempotency.WithScope(func(*http.Request) (string, error) {
		return "", errors.New("no principal")
	})}, status: 500,
		want: `{"detail":"the request's identity could not be determined","instance":"/things","reason":"idempotency_scope_unavailable","status":500,"title":"Internal Server Error","type":"https://github.com/systembuilderhub/hardening/blob/main/docs/problems.md#idempotency_scope_unavailable"}`},
	{reason: idempotency.ReasonBodyTooLarge, body: "12345", opts: []idempotency.Option{idempotency.WithMaxRequestBody(4)}, status: 413,
		want: `{"detail":"the request body exceeds the limit","instance":"/things","limit":4,"reason":"body_too_large","status":413,"title":"Request Entity Too Large","type":"https://github.com/systembuilderhub/hardening/blob/main/docs/problems.md#body_too_large"}`},
	{reason: idempotency.ReasonInvalidBody, broken: true, status: 400,
		want: `{"detail":"the request body could not be read","instance":"/things","reason":"invalid_body","status":400,"title":"Bad Request","type":"https://github.com/systembuilderhub/hardening/blob/main/docs/problems.md#invalid_body"}`},
	{reason: idempotency.ReasonKeyInFlight, busy: true, status: 409, retryAfter: "30",
		want: `{"detail":"a request with this Idempotency-Key is still being processed; retry later","instance":"/things","reason":"idempotency_key_in_flight","retry_after_seconds":30,"status":409,"title":"Conflict","type":"https://github.com/systembuilderhub/hardening/blob/main/docs/problems.md#idempotency_key_in_flight"}`},
	{reason: idempotency.ReasonKeyReused, prior: "first", body: "second", status: 422,
		want: `{"detail":"this Idempotency-Key was used with a different request","instance":"/things","reason":"idempotency_key_reused","status":422,"title":"Unprocessable Entity","type":"https://github.com/systembuilderhub/hardening/blob/main/docs/problems.md#idempotency_key_reused"}`},
	{reason: idempotency.ReasonStoreUnavailable, store: failingStore{}, status: 503, retryAfter: "1",
		want: `{"detail":"the idempotency store is unavailable; retry later","instance":"/things","reason":"idempotency_store_unavailable","retry_after_seconds":1,"status":503,"title":"Service Unavailable","type":"https://github.com/systembuilderhub/hardening/blob/main/docs/problems.md#idempotency_store_unavailable"}`},
}

// send makes tc's request (and its preparation) through a middleware built
// with opts added to tc's; the handler must not run for tc's request.
func (tc errorCase) send(t *testing.T, opts ...idempotency.Option) *httptest.ResponseRecorder {
	t.Helper()
	store := tc.store
	if store == nil {
		store = idempotency.NewMemoryStore()
	}
	clock := storetest.NewClock(time.Unix(1_700_000_000, 0))
	m, err := idempotency.New(store, append(append([]idempotency.Option{idempotency.WithClock(clock.Now)}, tc.opts...), opts...)...)
	require.NoError(t, err)
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	h := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Hold") != "" {
			once.Do(func() { close(entered) })
			<-release
		}
		w.WriteHeader(http.StatusCreated)
	}))
	request := func(key, body string) *http.Request {
		req := httptest.NewRequest(http.MethodPost, "/things", strings.NewReader(body))
		req = req.WithContext(hardening.WithCaller(req.Context(), hardening.Caller{Tenant: "t1", Subject: "alice"}))
		if key != "-" {
			req.Header.Set(idempotency.HeaderName, key)
		}
		return req
	}
	if tc.prior != "" {
		h.ServeHTTP(httptest.NewRecorder(), request("k", tc.prior))
	}
	if tc.busy {
		held := request("k", tc.body)
		held.Header.Set("X-Hold", "1")
		wg.Go(func() { h.ServeHTTP(httptest.NewRecorder(), held) })
		<-entered
	}
	defer wg.Wait()
	defer close(release)
	key := tc.key
	if key == "" {
		key = "k"
	}
	req := request(key, tc.body)
	if tc.broken {
		req.Body = io.NopCloser(iotest.ErrReader(errors.New("connection reset")))
		req.ContentLength = -1
	}
	rr := httptest.NewRecorder()
	h.ServeHTTP(rr, req)
	return rr
}

// TestErrorAnswersUnchanged pins the default answers, byte for byte.
func TestErrorAnswersUnchanged(t *testing.T) {
	t.Parallel()
	for _, tc := range errorCases {
		t.Run(tc.reason, func(t *testing.T) {
			t.Parallel()
			rr := tc.send(t)
			assert.Equal(t, tc.status, rr.Code)
			assert.Equal(t, tc.want+"\n", rr.Body.String())
			assert.Equal(t, hardening.ProblemContentType, rr.Header().Get("Content-Type"))
			assert.Equal(t, "no-store", rr.Header().Get("Cache-Control"))
			assert.Equal(t, tc.retryAfter, rr.Header().Get("Retry-After"))
		})
	}
}

// TestErrorHandlerGetsTypedErrors: a custom handler receives each answer as
// an *idempotency.Error and a hardening.Error, and writes its own body.
func TestErrorHandlerGetsTypedErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range errorCases {
		t.Run(tc.reason, func(t *testing.T) {
			t.Parallel()
			var got error
			rr := tc.send(t, idempotency.WithErrorHandler(func(w http.ResponseWriter, r *http.Request, err error) {
				got = err
				w.WriteHeader(http.StatusTeapot)
			}))
			assert.Equal(t, http.StatusTeapot, rr.Code, "the custom handler answered")
			var ie *idempotency.Error
			require.True(t, errors.As(got, &ie), "an *idempotency.Error: %v", got)
			assert.Equal(t, tc.reason, ie.Reason)
			var he hardening.Error
			require.True(t, errors.As(got, &he))
			p := he.Problem()
			assert.Equal(t, tc.status, p.Status)
			assert.Equal(t, tc.reason, p.Reason)
			assert.Equal(t, tc.retryAfter != "", p.RetryAfter > 0)
		})
	}
}

// TestErrorKeepsCause: the cause is found with errors.Is and stays out of
// the body.
func TestErrorKeepsCause(t *testing.T) {
	t.Parallel()
	var got error
	rr := do(newMW(t, idempotency.WithErrorHandler(func(w http.ResponseWriter, r *http.Request, err error) {
		got = err
		hardening.WriteError(w, r, err)
	})).Handler(http.NotFoundHandler()), call{key: "k", anonymous: true})
	assert.ErrorIs(t, got, idempotency.ErrNoCaller)
	assert.NotContains(t, rr.Body.String(), "caller in the request context")
	assert.Contains(t, got.Error(), idempotency.ReasonScopeUnavailable)
}
