package hardening_test

import (
	"go/ast"
	"go/types"
	"slices"
	"testing"
)

// reasonScan finds every problem reason the module's code can answer
// with by following values into the reason of a problem:
//
//   - The seeds are the string fields named Reason or reason of every type
//     with a method Problem() hardening.Problem (hardening.Problem itself,
//     each package's typed errors).
//   - A reason position is a value written to a reason field (composite
//     literal, keyed or positional, or assignment), or an argument for a
//     reason parameter.
//   - A value in a reason position is a constant (recorded), a field (which
//     becomes a reason field: its writes are reason positions), a parameter
//     of a function or closure (which becomes a reason parameter: its
//     callers' arguments are reason positions), a local or package variable
//     (its assignments are followed), a call of the module's function (its
//     return values are followed), or a concatenation (recorded as a
//     pattern, such as tenancy's "<name>_rate_exceeded", and not followed).
//   - Anything else is unresolved: the test reports it rather than guess.
//
// The scan repeats until no new reason field or parameter appears.
type reasonScan struct {
	m       *module
	problem types.Type // hardening.Problem

	fields  map[*types.Var]bool           // reason fields
	params  map[types.Object]map[int]bool // reason parameters of a *types.Func or a closure's variable
	grew    bool
	paramOf map[*types.Var]paramRef
	assigns map[*types.Var][]source // writes to each variable
	returns map[*types.Func][]*ast.ReturnStmt
	litVar  map[*ast.FuncLit]*types.Var // closures held in a variable

	found      map[string]map[string]bool // reason -> file:line of the constant
	patterns   map[string]map[string]bool // pattern -> file:line
	unresolved map[string]string          // file:line -> expression
}

type paramRef struct {
	fn    types.Object // *types.Func, or the *types.Var a closure is stored in
	index int
}

// source is one value written to a variable: expr, or result index of a
// multi-value call.
type source struct {
	expr  ast.Expr
	index int // -1: expr itself
}

func newReasonScan(m *module) *reasonScan {
	s := &reasonScan{m: m, fields: map[*types.Var]bool{}, params: map[types.Object]map[int]bool{},
		paramOf: map[*types.Var]paramRef{}, assigns: map[*types.Var][]source{},
		returns: map[*types.Func][]*ast.ReturnStmt{}, litVar: map[*ast.FuncLit]*types.Var{},
		found: map[string]map[string]bool{}, patterns: map[string]map[string]bool{}, unresolved: map[string]string{}}
	s.problem = m.pkgs[m.path].Scope().Lookup("Problem").Type()
	s.seed()
	s.index()
	for s.grew = true; s.grew; {
		s.grew = false
		s.found, s.patterns, s.unresolved = map[string]map[string]bool{}, map[string]map[string]bool{}, map[string]string{}
		for _, f := range m.files {
			ast.Inspect(f, s.visit)
		}
	}
	return s
}

// seed marks the reason fields of the problem types.
func (s *reasonScan) seed() {
	for _, pkg := range s.m.pkgs {
		for _, name := range pkg.Scope().Names() {
			tn, ok := pkg.Scope().Lookup(name).(*types.TypeName)
			if !ok || !s.isProblemType(tn.Type()) {
				continue
			}
			st, ok := tn.Type().Underlying().(*types.Struct)
			for i := 0; ok && i < st.NumFields(); i++ {
				if f := st.Field(i); (f.Name() == "Reason" || f.Name() == "reason") && isString(f.Type()) {
					s.fields[f] = true
				}
			}
		}
	}
}

// isProblemType reports whether t or *t has the method Problem() hardening.Problem.
func (s *reasonScan) isProblemType(t types.Type) bool {
	if types.IsInterface(t) {
		return false
	}
	sel := types.NewMethodSet(types.NewPointer(t)).Lookup(nil, "Problem")
	if sel == nil {
		for _, pkg := range s.m.pkgs {
			if sel = types.NewMethodSet(types.NewPointer(t)).Lookup(pkg, "Problem"); sel != nil {
				break
			}
		}
	}
	if sel == nil {
		return false
	}
	sig := sel.Type().(*types.Signature)
	return sig.Params().Len() == 0 && sig.Results().Len() == 1 && types.Identical(sig.Results().At(0).Type(), s.problem)
}

func isString(t types.Type) bool {
	b, ok := t.Underlying().(*types.Basic)
	return ok && b.Info()&types.IsString != 0
}

// index records every parameter, variable write, return statement and
// closure variable of the module.
func (s *reasonScan) index() {
	info := s.m.info
	for _, f := range s.m.files {
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.FuncDecl:
				fn, _ := info.Defs[n.Name].(*types.Func)
				if fn == nil {
					return true
				}
				s.indexParams(fn, n.Type)
				if n.Body != nil {
					s.indexReturns(fn, n.Body)
				}
			case *ast.AssignStmt:
				s.indexAssign(n.Lhs, n.Rhs)
			case *ast.ValueSpec:
				lhs := make([]ast.Expr, len(n.Names))
				for i, id := range n.Names {
					lhs[i] = id
				}
				s.indexAssign(lhs, n.Values)
			}
			return true
		})
	}
}

func (s *reasonScan) indexParams(fn types.Object, ft *ast.FuncType) {
	i := 0
	for _, field := range ft.Params.List {
		if len(field.Names) == 0 {
			i++
		}
		for _, id := range field.Names {
			if v, ok := s.m.info.Defs[id].(*types.Var); ok {
				s.paramOf[v] = paramRef{fn, i}
			}
			i++
		}
	}
}

func (s *reasonScan) indexReturns(fn *types.Func, body *ast.BlockStmt) {
	ast.Inspect(body, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.FuncLit:
			return false // its returns are its own
		case *ast.ReturnStmt:
			s.returns[fn] = append(s.returns[fn], n)
		}
		return true
	})
}

func (s *reasonScan) indexAssign(lhs, rhs []ast.Expr) {
	for i, l := range lhs {
		id, ok := l.(*ast.Ident)
		if !ok {
			continue
		}
		v, _ := s.m.info.Defs[id].(*types.Var)
		if v == nil {
			v, _ = s.m.info.Uses[id].(*types.Var)
		}
		if v == nil {
			continue
		}
		switch {
		case len(rhs) == len(lhs):
			s.assigns[v] = append(s.assigns[v], source{rhs[i], -1})
			if lit, ok := rhs[i].(*ast.FuncLit); ok {
				s.litVar[lit] = v
				s.indexParams(v, lit.Type)
			}
		case len(rhs) == 1:
			s.assigns[v] = append(s.assigns[v], source{rhs[0], i})
		}
	}
}

// TestReasonScanFollowsValues: the scan finds a reason written in each of
// the ways it claims to follow (testdata/reasonscan), records the
// concatenation as a pattern and reports the map lookup it cannot follow.
func TestReasonScanFollowsValues(t *testing.T) {
	m, err := loadModule("testdata/reasonscan")
	if err != nil {
		t.Fatal(err)
	}
	s := newReasonScan(m)
	want := []string{"via_assigned_field", "via_carrier_literal", "via_const", "via_literal", "via_local",
		"via_param", "via_return", "via_tuple_result", "via_typed_const"}
	if got := sortedKeys(s.found); !slices.Equal(got, want) {
		t.Errorf("reasons\n got %v\nwant %v", got, want)
	}
	if got := sortedKeys(s.patterns); !slices.Equal(got, []string{"<name>_exceeded"}) {
		t.Errorf("patterns: got %v", got)
	}
	var unresolved []string
	for _, expr := range s.unresolved {
		unresolved = append(unresolved, expr)
	}
	if !slices.Equal(unresolved, []string{"dynamic[k]"}) {
		t.Errorf("unresolved: got %v", s.unresolved)
	}
}
