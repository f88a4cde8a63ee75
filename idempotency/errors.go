package idempotency

import (
	"net/http"
	"time"

	"github.com/systembuilderhub/hardening"
)

// Reasons of the problems the middleware answers with: the Reason of an
// Error and the "reason" member of its problem+json body. Each is listed in
// the kit's docs/problems.md.
const (
	// ReasonKeyMissing (400): WithRequireKey and no Idempotency-Key.
	ReasonKeyMissing = "idempotency_key_missing"
	// ReasonKeyInvalid (400): the key is malformed or the header repeated.
	ReasonKeyInvalid = "idempotency_key_invalid"
	// ReasonScopeUnavailable (500): the caller's scope could not be
	// determined (no hardening.Caller in the context and no WithScope, or
	// the WithScope function failed).
	ReasonScopeUnavailable = "idempotency_scope_unavailable"
	// ReasonBodyTooLarge (413): the request body exceeds WithMaxRequestBody.
	ReasonBodyTooLarge = "body_too_large"
	// ReasonInvalidBody (400): the request body could not be read.
	ReasonInvalidBody = "invalid_body"
	// ReasonKeyInFlight (409): a request with the key is still running.
	ReasonKeyInFlight = "idempotency_key_in_flight"
	// ReasonKeyReused (422): the key was used with a different request.
	ReasonKeyReused = "idempotency_key_reused"
	// ReasonStoreUnavailable (503): the Store failed (without WithFailOpen).
	ReasonStoreUnavailable = "idempotency_store_unavailable"
)

// Error is every answer the middleware gives instead of running the
// handler. It is passed to the WithErrorHandler function (default
// hardening.WriteError), which finds it with errors.As; it implements
// hardening.Error, and its Problem is the problem+json body the default
// writes.
type Error struct {
	// Reason is one of the Reason constants.
	Reason string
	// RetryAfter is when a retry may succeed (ReasonKeyInFlight: when the
	// lease expires, at least 1s; ReasonStoreUnavailable: 1s); zero for
	// the others. The problem sets Retry-After from it.
	RetryAfter time.Duration
	// Limit is the request body limit of ReasonBodyTooLarge.
	Limit int64
	// Err is the cause (the scope function's, the body reader's or the
	// store's error), for logs and errors.Is; it never reaches the client.
	Err error
}

var _ hardening.Error = (*Error)(nil)

// Error returns the reason and, when there is one, the cause.
func (e *Error) Error() string {
	if e.Err != nil {
		return "idempotency: " + e.Reason + ": " + e.Err.Error()
	}
	return "idempotency: " + e.Reason
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Problem returns the answer's status, reason, detail and members.
func (e *Error) Problem() hardening.Problem {
	p := hardening.Problem{Reason: e.Reason, RetryAfter: e.RetryAfter}
	switch e.Reason {
	case ReasonKeyMissing:
		p.Status, p.Detail = http.StatusBadRequest, "this endpoint requires an Idempotency-Key header"
	case ReasonKeyInvalid:
		p.Status, p.Detail = http.StatusBadRequest, "Idempotency-Key must be one quoted string or token of 1 to 255 visible ASCII characters"
		p = p.With("max_length", MaxKeyLength)
	case ReasonScopeUnavailable:
		p.Status, p.Detail = http.StatusInternalServerError, "the request's identity could not be determined"
	case ReasonBodyTooLarge:
		p.Status, p.Detail = http.StatusRequestEntityTooLarge, "the request body exceeds the limit"
		p = p.With("limit", e.Limit)
	case ReasonInvalidBody:
		p.Status, p.Detail = http.StatusBadRequest, "the request body could not be read"
	case ReasonKeyInFlight:
		p.Status, p.Detail = http.StatusConflict, "a request with this Idempotency-Key is still being processed; retry later"
	case ReasonKeyReused:
		p.Status, p.Detail = http.StatusUnprocessableEntity, "this Idempotency-Key was used with a different request"
	case ReasonStoreUnavailable:
		p.Status, p.Detail = http.StatusServiceUnavailable, "the idempotency store is unavailable; retry later"
	default:
		p.Status = http.StatusInternalServerError
	}
	return p
}
