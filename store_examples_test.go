package hardening_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// storeDirs are the names of the kit's store and bus subpackages whose
// Examples go test runs (postgresstore is checked apart).
var storeDirs = map[string]bool{"sqlitestore": true, "redisstore": true, "redisbus": true}

// TestEveryStorePackageHasARunnableExample: each store subpackage shows
// its construction in an Example that go test runs and checks (one with
// an "// Output:" comment), so the godoc snippet cannot rot.
func TestEveryStorePackageHasARunnableExample(t *testing.T) {
	t.Parallel()
	var found int
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		if (path != "." && strings.HasPrefix(d.Name(), ".")) || d.Name() == "testdata" || d.Name() == "examples" {
			return filepath.SkipDir
		}
		switch {
		case d.Name() == "postgresstore":
			// go test has no Postgres to run an Example on: its Example is
			// run and its output checked by a test when POSTGRES_URL is set.
			found++
			assert.True(t, hasTestRunningExample(t, path), "%s: no test that runs its Example (testenv.RunExample)", path)
		case storeDirs[d.Name()]:
			found++
			assert.True(t, hasCheckedExample(t, path), "%s: no Example with an // Output: comment", path)
		}
		return nil
	})
	require.NoError(t, err)
	assert.GreaterOrEqual(t, found, 16, "store subpackages found")
}

// hasCheckedExample reports whether a test file of dir declares an
// Example function whose body carries an "// Output:" comment.
func hasCheckedExample(t *testing.T, dir string) bool {
	files, err := filepath.Glob(filepath.Join(dir, "*_test.go"))
	require.NoError(t, err)
	for _, name := range files {
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, name, nil, parser.ParseComments)
		require.NoError(t, err, name)
		for _, decl := range f.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok || fn.Recv != nil || !strings.HasPrefix(fn.Name.Name, "Example") {
				continue
			}
			for _, cg := range f.Comments {
				if cg.Pos() > fn.Body.Lbrace && cg.End() < fn.Body.Rbrace && strings.HasPrefix(cg.Text(), "Output:") {
					return true
				}
			}
		}
	}
	return false
}

// hasTestRunningExample reports whether a test file of dir has a Test
// function that passes one of the package's Example functions to
// testenv.RunExample, which checks what it prints.
func hasTestRunningExample(t *testing.T, dir string) bool {
	files, err := filepath.Glob(filepath.Join(dir, "*_test.go"))
	require.NoError(t, err)
	for _, name := range files {
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, 0)
		require.NoError(t, err, name)
		found := false
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) != 2 {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			arg, isIdent := call.Args[1].(*ast.Ident)
			if ok && sel.Sel.Name == "RunExample" && isIdent && strings.HasPrefix(arg.Name, "Example") {
				found = true
			}
			return !found
		})
		if found {
			return true
		}
	}
	return false
}
