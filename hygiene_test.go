package hardening_test

import (
	"io/fs"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// generatedName is how go test names the inputs it writes to
// testdata/fuzz: a hash of the input.
var generatedName = regexp.MustCompile(`^[0-9a-f]{16}$`)

// TestFuzzCorporaAreNamed: the committed fuzz corpora hold named seeds and
// the inputs that found bugs, each named for what it is, not generated
// hash-named files (a failing input go test writes must be renamed for the
// bug it found before it is committed).
func TestFuzzCorporaAreNamed(t *testing.T) {
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !strings.Contains(filepath.ToSlash(path), "/testdata/fuzz/") {
			return nil
		}
		if generatedName.MatchString(d.Name()) {
			t.Errorf("%s: a generated name; rename it for the bug it found, or delete it", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
