package hardening_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// testVariableRE finds the variables tests and CI scripts read: names
// passed to os.Getenv / os.LookupEnv, Env* constants, and shell
// parameter expansions of upper-case names.
var testVariableRE = regexp.MustCompile(`(?:Getenv\(|LookupEnv\(|\bEnv\w*\s*=\s*)"([A-Z][A-Z0-9_]+)"|\$\{?([A-Z][A-Z0-9_]{2,})\b`)

// TestTestVariablesDocumented: every variable a test, internal/testenv or
// .ci reads has a row in docs/configuration.md (the variables that only
// pass data to a re-executed test binary, *_HELPER_*, excepted).
func TestTestVariablesDocumented(t *testing.T) {
	doc, err := os.ReadFile("docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]string{}
	err = filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if d.Name() == "testdata" || (path != "." && strings.HasPrefix(d.Name(), ".") && d.Name() != ".ci") {
				return filepath.SkipDir
			}
			return nil
		}
		slash := filepath.ToSlash(path)
		if !strings.HasSuffix(path, "_test.go") && !strings.HasPrefix(slash, "internal/testenv/") && !strings.HasPrefix(slash, ".ci/") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range testVariableRE.FindAllStringSubmatch(string(src), -1) {
			name := m[1] + m[2]
			if strings.Contains(name, "_HELPER_") || shellOwn[name] {
				continue
			}
			found[name] = path
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"REDIS_URL", "POSTGRES_URL", "REDIS_CLUSTER_ADDRS", "CI", "FUZZTIME"} {
		if found[want] == "" {
			t.Errorf("the scan missed %s", want)
		}
	}
	for name, path := range found {
		if !strings.Contains(string(doc), "| `"+name+"`") {
			t.Errorf("%s (read in %s) has no row in docs/configuration.md", name, path)
		}
	}
}

// shellOwn are names the CI scripts set and read themselves, or the
// shell's own.
var shellOwn = map[string]bool{"SECONDS": true, "RANDOM": true}
