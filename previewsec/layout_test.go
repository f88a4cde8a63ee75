package previewsec_test

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSiblingPackagesAreIndependent: previewsec, previewsec/egress and
// previewsec/container do not import one another, in code or tests.
func TestSiblingPackagesAreIndependent(t *testing.T) {
	t.Parallel()
	const mod = "github.com/systembuilderhub/hardening/"
	pkgs := map[string]string{".": mod + "previewsec", "egress": mod + "previewsec/egress", "container": mod + "previewsec/container"}
	for dir, self := range pkgs {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		require.NoError(t, err)
		require.NotEmpty(t, files, dir)
		for _, f := range files {
			parsed, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
			require.NoError(t, err, f)
			for _, imp := range parsed.Imports {
				path, _ := strconv.Unquote(imp.Path.Value)
				for _, other := range pkgs {
					if other != self {
						assert.NotEqual(t, other, path, "%s imports %s", f, path)
					}
				}
			}
		}
	}
}
