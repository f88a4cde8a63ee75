package previewsec

import (
	"net/http"
	"time"

	"github.com/systembuilderhub/hardening"
)

// Problem reasons of the answers RequirePreviewToken gives (the "reason"
// member of its problem+json bodies).
const (
	// ProblemTokenRequired: 401, no valid preview token.
	ProblemTokenRequired = "preview_token_required"
	// ProblemForbidden: 403, a valid token for another preview or tenant.
	ProblemForbidden = "preview_forbidden"
	// ProblemNotFound: 404, no preview id in the path, or the owner
	// lookup found no such preview.
	ProblemNotFound = "not_found"
	// ProblemUnavailable: 503, the revocation list or the owner lookup
	// failed; the request is refused (fail closed).
	ProblemUnavailable = "preview_auth_unavailable"
)

// RejectionError is the error RequirePreviewToken passes to its error
// handler (WithErrorHandler) when it refuses a request. Its Problem is the
// answer the default handler writes; Cause says why in detail for logs and
// metrics and never reaches the client through the default handler.
// errors.Is finds the Verifier's error (ErrExpired, ErrRevoked,
// ErrUnavailable, ...) or the owner lookup's error through it.
type RejectionError struct {
	// Status is the HTTP status: 401, 403, 404 or 503.
	Status int
	// Reason is the problem reason, one of the Problem* constants.
	Reason string
	// Cause is the detailed reason: a RejectionReason value ("expired",
	// "wrong_tenant", ...), "not_found" or "unavailable".
	Cause string
	// PreviewID is the preview the request was for; empty when the path
	// names none.
	PreviewID string

	err error
}

// Error describes the rejection for logs.
func (e *RejectionError) Error() string {
	s := "previewsec: preview request refused: " + e.Reason
	if e.Cause != "" && e.Cause != e.Reason {
		s += " (" + e.Cause + ")"
	}
	if e.err != nil {
		s += ": " + e.err.Error()
	}
	return s
}

// Unwrap returns the Verifier's or the owner lookup's error, if any.
func (e *RejectionError) Unwrap() error { return e.err }

// Problem is the answer: the same status, reason and detail whatever the
// Cause, so a client learns nothing about why its token failed. A 503
// carries Retry-After: 1.
func (e *RejectionError) Problem() hardening.Problem {
	p := hardening.NewProblem(e.Status, e.Reason, rejectionDetails[e.Reason])
	if e.Status == http.StatusServiceUnavailable {
		p.RetryAfter = time.Second
	}
	return p
}

var rejectionDetails = map[string]string{
	ProblemTokenRequired: "a valid preview token is required",
	ProblemForbidden:     "the preview token does not grant access to this preview",
	ProblemNotFound:      "no such preview",
	ProblemUnavailable:   "preview authentication is temporarily unavailable",
}

var _ hardening.Error = (*RejectionError)(nil)
