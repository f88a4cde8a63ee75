// Package svc writes reasons in each of the ways the scan follows.
package svc

import (
	"errors"

	fixture "example.com/fixture"
)

const reasonConst = "via_const"

// Reason is a named string type.
type Reason string

const typedReason Reason = "via_typed_const"

// typedErr is a problem type whose reason is a positional field.
type typedErr struct {
	status int
	reason string
}

func (e *typedErr) Error() string { return e.reason }

func (e *typedErr) Problem() fixture.Problem { return fixture.NewProblem(e.status, e.reason) }

// decision is not a problem type, but its Reason flows into one.
type decision struct{ Reason string }

func decide(ok bool) decision {
	d := decision{}
	if !ok {
		d.Reason = "via_assigned_field"
	}
	return d
}

func check() (string, string) { return "via_tuple_result", "rule" }

func pick(a bool) string {
	if a {
		return "via_return"
	}
	return ""
}

func helper(reason string) error { return &typedErr{400, reason} }

var (
	_ = fixture.NewProblem(400, "via_literal")
	_ = fixture.Problem{Reason: reasonConst}
	_ = &typedErr{403, string(typedReason)}
	_ = helper("via_param")
	_ = fixture.NewProblem(400, pick(true))
	_ = fixture.NewProblem(403, decide(false).Reason)
	_ = errors.New("not a reason")
	_ = decision{Reason: "via_carrier_literal"}
)

func closure() fixture.Problem {
	fail := func(reason string) fixture.Problem { return fixture.NewProblem(503, reason) }
	r, _ := check()
	local := "via_local"
	if r == "" {
		return fail(local)
	}
	return fail(r)
}

func pattern(name string) fixture.Problem { return fixture.NewProblem(429, name+"_exceeded") }

var dynamic = map[int]string{}

func unresolved(k int) fixture.Problem { return fixture.NewProblem(400, dynamic[k]) }
