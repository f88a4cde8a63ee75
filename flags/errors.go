package flags

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/systembuilderhub/hardening"
)

// Errors returned by the package. Match them with errors.Is. Those an
// application answers a request with (ErrInvalidName, ErrUnknownFlag,
// ErrInvalidChange, ErrInvalidCursor, ErrUnavailable) are also
// hardening.Errors: errors.As(err, &he) finds their status and reason, and
// hardening.WriteError(w, r, err) answers with them (see the reasons in
// docs/flags.md). Their Problem never carries a flag name, a tenant or a
// store's error text.
var (
	// ErrInvalidName: a flag name is empty, too long or has a character
	// other than a-z, 0-9, '-', '_' and '.'. Answered 400 invalid_flag_name.
	ErrInvalidName error = &problemError{"flags: invalid flag name", http.StatusBadRequest, "invalid_flag_name",
		"a flag name is 1 to 100 characters of a-z, 0-9, '-', '_' and '.'"}
	// ErrUnknownFlag: a toggle names a flag that was not registered.
	// Answered 404 flag_not_found.
	ErrUnknownFlag error = &problemError{"flags: unknown flag", http.StatusNotFound, "flag_not_found",
		"no flag is registered under this name"}
	// ErrInvalidChange: a Change or an AuditQuery has a bad field.
	// Answered 400 invalid_change.
	ErrInvalidChange error = &problemError{"flags: invalid change", http.StatusBadRequest, "invalid_change",
		"the actor, tenant or reason of the change, or a filter or limit of the audit query, is out of range"}
	// ErrInvalidCursor: an audit cursor was not produced by this package.
	// Answered 400 invalid_cursor.
	ErrInvalidCursor error = &problemError{"flags: invalid audit cursor", http.StatusBadRequest, "invalid_cursor",
		"the audit cursor is not one this service returned"}
	// ErrUnavailable: the store failed a toggle, an audit query or a
	// refresh. It wraps the store's error too (errors.Is finds both).
	// Answered 503 flags_unavailable.
	ErrUnavailable error = &problemError{"flags: store unavailable", http.StatusServiceUnavailable, "flags_unavailable",
		"the flag store is unavailable; retry later"}
	// ErrDuplicateFlag: a flag is registered twice.
	ErrDuplicateFlag = errors.New("flags: flag registered twice")
	// ErrClosed: the client was closed.
	ErrClosed = errors.New("flags: client closed")
)

// problemError is a sentinel error that describes itself as an HTTP
// problem.
type problemError struct {
	msg            string
	status         int
	reason, detail string
}

func (e *problemError) Error() string { return e.msg }

// Problem implements hardening.Error.
func (e *problemError) Problem() hardening.Problem {
	return hardening.NewProblem(e.status, e.reason, e.detail)
}

// unavailable wraps a store's error in ErrUnavailable, unless it already
// describes itself (a store that returns one of the package's errors).
func unavailable(op string, err error) error {
	var he hardening.Error
	if errors.As(err, &he) {
		return fmt.Errorf("flags: %s: %w", op, err)
	}
	return fmt.Errorf("%w: %s: %w", ErrUnavailable, op, err)
}
