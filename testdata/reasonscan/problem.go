// Package fixture is the root package of TestReasonScanFollowsValues'
// module: a Problem type like hardening's.
package fixture

// Problem is a problem document.
type Problem struct {
	Status int
	Reason string
}

// Problem returns p.
func (p Problem) Problem() Problem { return p }

// NewProblem builds a Problem.
func NewProblem(status int, reason string) Problem { return Problem{Status: status, Reason: reason} }
