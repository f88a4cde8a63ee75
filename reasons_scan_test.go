package hardening_test

import (
	"go/ast"
	"go/constant"
	"go/token"
	"go/types"
	"strings"
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

// visit evaluates the reason positions at n.
func (s *reasonScan) visit(n ast.Node) bool {
	info := s.m.info
	switch n := n.(type) {
	case *ast.CompositeLit:
		t := info.Types[n].Type
		if t == nil {
			return true
		}
		st, ok := t.Underlying().(*types.Struct)
		if !ok {
			return true
		}
		for i, e := range n.Elts {
			field, val := fieldOf(info, st, i, e)
			if field != nil && s.fields[field] {
				s.eval(val, nil)
			}
		}
	case *ast.AssignStmt:
		for i, l := range n.Lhs {
			sel, ok := l.(*ast.SelectorExpr)
			if !ok || info.Selections[sel] == nil || !s.fields[asVar(info.Selections[sel].Obj())] {
				continue
			}
			if len(n.Rhs) == len(n.Lhs) {
				s.eval(n.Rhs[i], nil)
			} else {
				s.evalResult(n.Rhs[0], i, nil)
			}
		}
	case *ast.CallExpr:
		for i := range s.params[s.callee(n.Fun)] {
			if i < len(n.Args) {
				s.eval(n.Args[i], nil)
			}
		}
	}
	return true
}

// fieldOf returns the field the i-th element e of a struct literal sets,
// and its value.
func fieldOf(info *types.Info, st *types.Struct, i int, e ast.Expr) (*types.Var, ast.Expr) {
	if kv, ok := e.(*ast.KeyValueExpr); ok {
		if id, ok := kv.Key.(*ast.Ident); ok {
			return asVar(info.Uses[id]), kv.Value
		}
		return nil, nil
	}
	if i < st.NumFields() {
		return st.Field(i), e
	}
	return nil, nil
}

func asVar(o types.Object) *types.Var {
	v, _ := o.(*types.Var)
	return v
}

// callee is the function or closure variable fun calls, or nil.
func (s *reasonScan) callee(fun ast.Expr) types.Object {
	switch f := ast.Unparen(fun).(type) {
	case *ast.Ident:
		return s.m.info.Uses[f]
	case *ast.SelectorExpr:
		if sel := s.m.info.Selections[f]; sel != nil {
			return sel.Obj()
		}
		return s.m.info.Uses[f.Sel]
	case *ast.IndexExpr: // an instantiated generic function
		return s.callee(f.X)
	}
	return nil
}

// eval records the reasons e can be; seen guards against cycles.
func (s *reasonScan) eval(e ast.Expr, seen map[types.Object]bool) {
	info := s.m.info
	e = ast.Unparen(e)
	if tv := info.Types[e]; tv.Value != nil {
		if tv.Value.Kind() == constant.String {
			if v := constant.StringVal(tv.Value); v != "" {
				s.record(s.found, v, e.Pos())
			}
			return
		}
	}
	if seen == nil {
		seen = map[types.Object]bool{}
	}
	switch e := e.(type) {
	case *ast.Ident:
		s.evalVar(e, asVar(info.Uses[e]), seen)
		return
	case *ast.SelectorExpr:
		if sel := info.Selections[e]; sel != nil && sel.Kind() == types.FieldVal {
			if f := asVar(sel.Obj()); !s.fields[f] {
				s.fields[f], s.grew = true, true
			}
			return
		}
		if v := asVar(info.Uses[e.Sel]); v != nil {
			s.evalVar(e.Sel, v, seen)
			return
		}
	case *ast.CallExpr:
		if tv := info.Types[e.Fun]; tv.IsType() && len(e.Args) == 1 {
			s.eval(e.Args[0], seen) // a conversion
			return
		}
		if s.evalResult(e, 0, seen) {
			return
		}
	case *ast.BinaryExpr:
		if e.Op == token.ADD {
			s.record(s.patterns, s.pattern(e), e.Pos())
			return
		}
	}
	s.unresolved[s.m.where(e.Pos())] = types.ExprString(e)
}

// evalVar follows a variable: a parameter becomes a reason parameter, any
// other variable's writes are evaluated.
func (s *reasonScan) evalVar(id *ast.Ident, v *types.Var, seen map[types.Object]bool) {
	if v == nil {
		s.unresolved[s.m.where(id.Pos())] = id.Name
		return
	}
	if p, ok := s.paramOf[v]; ok {
		if !s.params[p.fn][p.index] {
			if s.params[p.fn] == nil {
				s.params[p.fn] = map[int]bool{}
			}
			s.params[p.fn][p.index], s.grew = true, true
		}
		return
	}
	if seen[v] {
		return
	}
	seen[v] = true
	srcs := s.assigns[v]
	if len(srcs) == 0 {
		s.unresolved[s.m.where(id.Pos())] = id.Name + " (never assigned)"
	}
	for _, src := range srcs {
		if src.index < 0 {
			s.eval(src.expr, seen)
		} else {
			s.evalResult(src.expr, src.index, seen)
		}
	}
}

// evalResult evaluates result i of the module's function that call calls,
// through its return statements. It reports false when call is not such a
// call.
func (s *reasonScan) evalResult(call ast.Expr, i int, seen map[types.Object]bool) bool {
	c, ok := ast.Unparen(call).(*ast.CallExpr)
	if !ok {
		return false
	}
	fn, ok := s.callee(c.Fun).(*types.Func)
	if !ok || fn.Pkg() == nil || !strings.HasPrefix(fn.Pkg().Path(), s.m.path) || s.returns[fn] == nil {
		return false
	}
	if seen == nil {
		seen = map[types.Object]bool{}
	}
	if seen[fn] {
		return true
	}
	seen[fn] = true
	for _, r := range s.returns[fn] {
		switch {
		case len(r.Results) > i:
			s.eval(r.Results[i], seen)
		case len(r.Results) == 1:
			s.evalResult(r.Results[0], i, seen)
		}
	}
	return true
}

// pattern writes a concatenation with its variable parts as <name>.
func (s *reasonScan) pattern(e ast.Expr) string {
	e = ast.Unparen(e)
	if tv := s.m.info.Types[e]; tv.Value != nil && tv.Value.Kind() == constant.String {
		return constant.StringVal(tv.Value)
	}
	switch e := e.(type) {
	case *ast.BinaryExpr:
		return s.pattern(e.X) + s.pattern(e.Y)
	case *ast.SelectorExpr:
		return "<" + e.Sel.Name + ">"
	case *ast.Ident:
		return "<" + e.Name + ">"
	}
	return "<" + types.ExprString(e) + ">"
}

func (s *reasonScan) record(into map[string]map[string]bool, v string, pos token.Pos) {
	if into[v] == nil {
		into[v] = map[string]bool{}
	}
	into[v][s.m.where(pos)] = true
}
