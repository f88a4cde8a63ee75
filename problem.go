package hardening

import (
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strconv"
	"time"
)

// ProblemContentType is the media type of a problem document (RFC 9457).
const ProblemContentType = "application/problem+json"

// DefaultTypeBase prefixes a problem's reason to form its type URI when
// neither the Problem nor the ProblemWriter sets one: the kit's list of
// reasons, each an anchor.
const DefaultTypeBase = "https://github.com/systembuilderhub/hardening/blob/main/docs/problems.md#"

// Problem is one RFC 9457 problem detail, and an error: the kit's
// middleware passes the errors it answers with to an ErrorHandler, and each
// of them is a Problem or carries one (see Error). The zero value of every
// field is valid: an empty Type becomes the writer's type base + Reason (or
// "about:blank" without a reason), an empty Title the status text.
type Problem struct {
	// Type is a URI reference identifying the problem type.
	Type string
	// Title is a short human-readable summary of the problem type.
	Title string
	// Status is the HTTP status code; 0 means 500.
	Status int
	// Detail is a human-readable explanation of this occurrence. It never
	// carries secrets or internal error text.
	Detail string
	// Instance is a URI reference identifying this occurrence; empty means
	// the request path.
	Instance string
	// Reason is a stable, machine-readable code written as the "reason"
	// extension member (for example "schema_pending").
	Reason string
	// RetryAfter, when positive, sets the Retry-After header (whole seconds,
	// rounded up) and the retry_after_seconds member.
	RetryAfter time.Duration
	// Extensions are further members (limit, current, ...). They cannot
	// replace the standard members above.
	Extensions map[string]any
}

// NewProblem returns a Problem with the given status, reason and detail.
func NewProblem(status int, reason, detail string) Problem {
	return Problem{Status: status, Reason: reason, Detail: detail}
}

// Error returns the reason and detail.
func (p Problem) Error() string {
	if p.Detail == "" {
		return p.Reason
	}
	return p.Reason + ": " + p.Detail
}

// Problem returns p: a Problem is its own Error.
func (p Problem) Problem() Problem { return p }

// With returns a copy of p with the extension member key set to value.
func (p Problem) With(key string, value any) Problem {
	ext := make(map[string]any, len(p.Extensions)+1)
	for k, v := range p.Extensions {
		ext[k] = v
	}
	ext[key] = value
	p.Extensions = ext
	return p
}

// Error is implemented by every error the kit answers over HTTP: a typed
// error (a quota rejection, a token rejection, ...) that knows its status,
// reason and extension members. Find it with errors.As:
//
//	var e hardening.Error
//	if errors.As(err, &e) { status := e.Problem().Status; ... }
type Error interface {
	error
	// Problem describes the error as an HTTP answer.
	Problem() Problem
}

// ErrorHandler answers a request that failed with err. Every middleware of
// the kit takes one (WithErrorHandler); the default is
// ProblemWriter{}.WriteError. An ErrorHandler must write a response.
type ErrorHandler func(w http.ResponseWriter, r *http.Request, err error)

// ProblemWriter writes errors as application/problem+json. Its zero value
// is ready to use and links problem types to the kit's reason list.
type ProblemWriter struct {
	// TypeBase prefixes a problem's reason to form its type URI when the
	// Problem sets no Type; empty means DefaultTypeBase. Point it at your
	// own documentation to make the kit's errors match your service's.
	TypeBase string
}

// WriteError answers with err's Problem when err is (or wraps) an Error,
// and otherwise with a bare 500 that does not reveal err's text.
func (pw ProblemWriter) WriteError(w http.ResponseWriter, r *http.Request, err error) {
	var e Error
	if errors.As(err, &e) {
		pw.Write(w, r, e.Problem())
		return
	}
	pw.Write(w, r, NewProblem(http.StatusInternalServerError, "internal_error", "the request could not be completed"))
}

// Write writes p to w. r may be nil; when set, its URL path is the default
// instance. Write sets Content-Type, Cache-Control: no-store,
// X-Content-Type-Options: nosniff and, when p.RetryAfter is positive,
// Retry-After. Headers set before (WWW-Authenticate, RateLimit) are kept.
func (pw ProblemWriter) Write(w http.ResponseWriter, r *http.Request, p Problem) {
	instance := ""
	if r != nil && r.URL != nil {
		instance = r.URL.Path
	}
	m := pw.members(p, instance)
	body, err := json.Marshal(m)
	if err != nil {
		// An extension value did not marshal: drop extensions rather than
		// fail to answer.
		p.Extensions = nil
		body, _ = json.Marshal(pw.members(p, instance))
	}
	h := w.Header()
	h.Set("Content-Type", ProblemContentType)
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Del("Content-Length")
	if secs := RetryAfterSeconds(p.RetryAfter); secs > 0 {
		h.Set("Retry-After", strconv.FormatInt(secs, 10))
	}
	w.WriteHeader(m["status"].(int))
	_, _ = w.Write(append(body, '\n'))
}

// members returns the JSON object members of p after defaults are
// applied, with instance used when p.Instance is empty.
func (pw ProblemWriter) members(p Problem, instance string) map[string]any {
	status := p.Status
	if status == 0 {
		status = http.StatusInternalServerError
	}
	m := make(map[string]any, len(p.Extensions)+7)
	for k, v := range p.Extensions {
		m[k] = v
	}
	typ := p.Type
	if typ == "" {
		typ = "about:blank"
		if p.Reason != "" {
			base := pw.TypeBase
			if base == "" {
				base = DefaultTypeBase
			}
			typ = base + p.Reason
		}
	}
	title := p.Title
	if title == "" {
		title = http.StatusText(status)
	}
	m["type"], m["title"], m["status"] = typ, title, status
	if p.Detail != "" {
		m["detail"] = p.Detail
	}
	if p.Instance != "" {
		instance = p.Instance
	}
	if instance != "" {
		m["instance"] = instance
	}
	if p.Reason != "" {
		m["reason"] = p.Reason
	}
	if secs := RetryAfterSeconds(p.RetryAfter); secs > 0 {
		m["retry_after_seconds"] = secs
	}
	return m
}

// WriteProblem writes p with the zero ProblemWriter.
func WriteProblem(w http.ResponseWriter, r *http.Request, p Problem) { ProblemWriter{}.Write(w, r, p) }

// WriteError answers err with the zero ProblemWriter: the default
// ErrorHandler of every middleware of the kit.
func WriteError(w http.ResponseWriter, r *http.Request, err error) {
	ProblemWriter{}.WriteError(w, r, err)
}

// RetryAfterSeconds rounds d up to whole seconds, as Retry-After requires.
// It returns 0 for d <= 0.
func RetryAfterSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64(math.Ceil(d.Seconds()))
}
