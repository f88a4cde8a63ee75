package hardening_test

import (
	"fmt"
	"go/ast"
	"go/build"
	"go/parser"
	"go/token"
	"go/types"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// module is the module's non-test Go code, parsed and type-checked from
// source with the standard library only: packages outside the module are
// empty stand-ins, so expressions that use them have no type, while every
// constant, type, field and function of the module resolves.
type module struct {
	fset  *token.FileSet
	path  string // module path
	info  *types.Info
	pkgs  map[string]*types.Package // import path -> package
	dirs  map[string]string         // import path -> directory, relative to the root
	files []*ast.File
	stubs map[string]*types.Package
}

// loadModule parses and type-checks every package under root (the
// module's directory) from its non-test files that build on this platform.
func loadModule(root string) (*module, error) {
	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		return nil, err
	}
	m := &module{fset: token.NewFileSet(), pkgs: map[string]*types.Package{}, dirs: map[string]string{},
		stubs: map[string]*types.Package{}, info: &types.Info{
			Types: map[ast.Expr]types.TypeAndValue{}, Defs: map[*ast.Ident]types.Object{},
			Uses: map[*ast.Ident]types.Object{}, Selections: map[*ast.SelectorExpr]*types.Selection{}}}
	for line := range strings.SplitSeq(string(gomod), "\n") {
		if p, ok := strings.CutPrefix(strings.TrimSpace(line), "module "); ok {
			m.path = strings.TrimSpace(p)
		}
	}
	byPath := map[string][]*ast.File{}
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); p != root && (n == "testdata" || strings.HasPrefix(n, ".") || strings.HasPrefix(n, "_")) {
				return filepath.SkipDir
			}
			return nil
		}
		dir, name := filepath.Split(p)
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			return nil
		}
		if ok, err := build.Default.MatchFile(dir, name); err != nil || !ok {
			return err
		}
		f, err := parser.ParseFile(m.fset, p, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, filepath.Dir(p))
		if err != nil {
			return err
		}
		ip := m.path
		if rel != "." {
			ip += "/" + filepath.ToSlash(rel)
		}
		byPath[ip] = append(byPath[ip], f)
		m.dirs[ip] = filepath.ToSlash(rel)
		return nil
	})
	if err != nil {
		return nil, err
	}
	paths := make([]string, 0, len(byPath))
	for p := range byPath {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		if _, err := m.check(p, byPath, nil); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// check type-checks the package at import path p once, its module
// imports first.
func (m *module) check(p string, byPath map[string][]*ast.File, seen []string) (*types.Package, error) {
	if pkg, ok := m.pkgs[p]; ok {
		return pkg, nil
	}
	for _, s := range seen {
		if s == p {
			return nil, fmt.Errorf("import cycle through %s", p)
		}
	}
	files := byPath[p]
	conf := types.Config{
		Error: func(error) {}, // the stand-ins for other modules leave holes; they are expected
		Importer: importerFunc(func(ip string) (*types.Package, error) {
			if _, ok := byPath[ip]; ok {
				return m.check(ip, byPath, append(seen, p))
			}
			return m.stub(ip), nil
		}),
	}
	pkg, _ := conf.Check(p, m.fset, files, m.info)
	m.pkgs[p] = pkg
	m.files = append(m.files, files...)
	return pkg, nil
}

// stub is the empty stand-in for a package outside the module.
func (m *module) stub(ip string) *types.Package {
	if pkg, ok := m.stubs[ip]; ok {
		return pkg
	}
	name := path.Base(ip)
	if strings.HasPrefix(name, "v") && strings.Trim(name[1:], "0123456789") == "" && path.Dir(ip) != "." {
		name = path.Base(path.Dir(ip))
	}
	name = strings.TrimPrefix(name, "go-") // a guess; a wrong name only leaves more holes
	pkg := types.NewPackage(ip, name)
	pkg.MarkComplete()
	m.stubs[ip] = pkg
	return pkg
}

type importerFunc func(string) (*types.Package, error)

func (f importerFunc) Import(p string) (*types.Package, error) { return f(p) }

// dirOf is the directory, relative to the root and slash-separated, of the
// file that holds pos.
func (m *module) dirOf(pos token.Pos) string {
	rel := m.where(pos)
	if i := strings.LastIndex(rel, "/"); i >= 0 {
		return rel[:i]
	}
	return "."
}

// where is pos as file:line, the file relative to the working directory.
func (m *module) where(pos token.Pos) string {
	p := m.fset.Position(pos)
	name := filepath.ToSlash(p.Filename)
	if wd, err := os.Getwd(); err == nil {
		if rel, err := filepath.Rel(wd, p.Filename); err == nil {
			name = filepath.ToSlash(rel)
		}
	}
	return fmt.Sprintf("%s:%d", name, p.Line)
}
