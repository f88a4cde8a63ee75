// Package problem is the kit's internal shorthand for the root package's
// RFC 9457 problem writer (hardening.Problem, hardening.ProblemWriter).
// Applications use those directly; this package only keeps the feature
// packages' call sites short.
package problem

import (
	"net/http"
	"time"

	"github.com/systembuilderhub/hardening"
)

// ContentType is the media type of a problem document.
const ContentType = hardening.ProblemContentType

// TypeBase is hardening.DefaultTypeBase.
const TypeBase = hardening.DefaultTypeBase

// Problem is hardening.Problem.
type Problem = hardening.Problem

// New is hardening.NewProblem.
func New(status int, reason, detail string) Problem {
	return hardening.NewProblem(status, reason, detail)
}

// Write is hardening.WriteProblem.
func Write(w http.ResponseWriter, r *http.Request, p Problem) { hardening.WriteProblem(w, r, p) }

// WriteStatus writes a problem with only a status, reason and detail.
func WriteStatus(w http.ResponseWriter, r *http.Request, status int, reason, detail string) {
	Write(w, r, New(status, reason, detail))
}

// RetryAfterSeconds is hardening.RetryAfterSeconds.
func RetryAfterSeconds(d time.Duration) int64 { return hardening.RetryAfterSeconds(d) }
