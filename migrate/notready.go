package migrate

import (
	"errors"
	"net/http"

	"github.com/systembuilderhub/hardening"
)

// ReasonDependencyUnavailable is the reason of a failing Check that sets
// no Reason of its own.
const ReasonDependencyUnavailable = "dependency_unavailable"

// ErrDBUnavailable is wrapped by a NotReadyError whose database did not
// answer (reason db_unavailable), together with the driver's error.
var ErrDBUnavailable = errors.New("migrate: database unavailable")

// NotReadyError is the error the readiness handler passes to its error
// handler when the service is not ready. It implements hardening.Error:
// its Problem is 503 "Service not ready" with the reason, and the checks
// when the request asked for them. Find it with errors.As.
type NotReadyError struct {
	// Reason is schema_pending, schema_ahead, checksum_mismatch,
	// db_unavailable or the failing Check's reason.
	Reason string
	// Detail explains the reason without internal error text.
	Detail string
	// Checks lists every check's result when the request has the query
	// parameter "verbose" (written as the "checks" member); nil otherwise.
	Checks []CheckResult
	// Err is the cause: a *SchemaError (errors.Is ErrPending, ErrAhead,
	// ErrChecksumMismatch), ErrDBUnavailable with the driver's error, or
	// the failing Check's error. It is for logs, never for the response.
	Err error
}

// Error returns the reason, the detail and the cause.
func (e *NotReadyError) Error() string {
	s := "migrate: not ready (" + e.Reason + "): " + e.Detail
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the cause.
func (e *NotReadyError) Unwrap() error { return e.Err }

// Problem describes the answer: 503, reason, detail and, when set, the
// checks.
func (e *NotReadyError) Problem() hardening.Problem {
	p := hardening.Problem{Status: http.StatusServiceUnavailable, Title: "Service not ready", Reason: e.Reason, Detail: e.Detail}
	if e.Checks != nil {
		p = p.With("checks", e.Checks)
	}
	return p
}

var _ hardening.Error = (*NotReadyError)(nil)
