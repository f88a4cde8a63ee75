package streamauth

import (
	"errors"
	"net/http"

	"github.com/systembuilderhub/hardening"
)

// Reasons of the problems a stream handler answers with when it opens no
// stream (the "reason" member; see docs/problems.md), besides
// ReasonTenantMismatch.
const (
	reasonMissingToken             = "missing_token"
	reasonInvalidToken             = "invalid_token"
	reasonTokenExpired             = "token_expired"
	reasonTokenRevoked             = "token_revoked"
	reasonUnauthenticated          = "unauthenticated"
	reasonAuthUnavailable          = "auth_unavailable"
	reasonStreamLimitExceeded      = "stream_limit_exceeded"
	reasonShuttingDown             = "shutting_down"
	reasonWebSocketUpgradeRequired = "websocket_upgrade_required"
)

// RefusedError is the error [SSE] and [WebSocket] answer a request with
// when they open no stream; it reaches the handler's ErrorHandler
// ([WithErrorHandler]), whose default writes its Problem as
// application/problem+json. Before the ErrorHandler runs, a 401 has
// WWW-Authenticate set (Bearer, or Bearer error="invalid_token" for a
// token that was given) and a 426 Upgrade: websocket and Connection:
// Upgrade.
type RefusedError struct {
	// Status is the HTTP status: 401 (missing, invalid, expired or revoked
	// token), 403 (tenant_mismatch), 426 (websocket_upgrade_required), 429
	// (stream_limit_exceeded) or 503 (auth_unavailable, shutting_down).
	Status int
	// Reason is the problem's reason: missing_token, invalid_token,
	// token_expired, token_revoked, unauthenticated, auth_unavailable,
	// tenant_mismatch, stream_limit_exceeded, shutting_down or
	// websocket_upgrade_required.
	Reason string
	// Err is the cause: the authenticator's error, a *LimitError, ErrRevoked,
	// ErrUnavailable or ErrClosed; nil for tenant_mismatch and
	// websocket_upgrade_required. It never reaches the client.
	Err error
}

var _ hardening.Error = (*RefusedError)(nil)

// Error returns the reason and the cause.
func (e *RefusedError) Error() string {
	if e.Err == nil {
		return "streamauth: stream refused: " + e.Reason
	}
	return "streamauth: stream refused: " + e.Reason + ": " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *RefusedError) Unwrap() error { return e.Err }

// Problem returns the problem the request is answered with.
func (e *RefusedError) Problem() hardening.Problem {
	var detail string
	switch e.Status {
	case http.StatusUnauthorized:
		detail = "a valid bearer token is required to open this stream"
	case http.StatusForbidden:
		detail = "the stream's resource belongs to another tenant"
	case http.StatusUpgradeRequired:
		detail = "this endpoint speaks WebSocket only: send a GET with Connection: Upgrade and Upgrade: websocket"
	case http.StatusTooManyRequests:
		var le *LimitError
		if errors.As(e.Err, &le) {
			return le.Problem()
		}
		detail = "too many concurrent streams"
	default:
		detail = "authentication is unavailable"
		if e.Reason == reasonShuttingDown {
			detail = "the server is not accepting streams"
		}
	}
	return hardening.NewProblem(e.Status, e.Reason, detail)
}

// Problem returns the 429 stream_limit_exceeded problem of e, with the
// limit, current and scope members.
func (e *LimitError) Problem() hardening.Problem {
	return hardening.NewProblem(http.StatusTooManyRequests, reasonStreamLimitExceeded,
		"too many concurrent streams for this "+e.Scope).With("limit", e.Limit).With("current", e.Current).With("scope", e.Scope)
}

// authRefusal returns the refusal of an authentication error: 503
// auth_unavailable for ErrUnavailable, otherwise 401 with the reason of
// authReason.
func authRefusal(err error) *RefusedError {
	reason := authReason(err)
	if reason == reasonAuthUnavailable {
		return &RefusedError{Status: http.StatusServiceUnavailable, Reason: reason, Err: err}
	}
	return &RefusedError{Status: http.StatusUnauthorized, Reason: reason, Err: err}
}
