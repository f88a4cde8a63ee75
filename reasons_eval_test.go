package hardening_test

import (
	"go/ast"
	"go/constant"
	"go/token"
	"go/types"
	"strings"
)

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
