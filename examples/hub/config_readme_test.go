package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// hubVariableRE finds the variables the hub's source names: env* constants
// and names passed to os.Getenv, envOr, envDuration and envPositiveInt.
var hubVariableRE = regexp.MustCompile(`(?:\benv\w*\s*=\s*|os\.Getenv\(|envOr\(|envDuration\(|envPositiveInt\()"([A-Z][A-Z0-9_]+)"`)

// TestConfigTableComplete: every variable the hub reads has a row in the
// configuration table (docs/configuration.md).
func TestConfigTableComplete(t *testing.T) {
	readme, err := os.ReadFile("../../docs/configuration.md")
	require.NoError(t, err)
	files, err := filepath.Glob("*.go")
	require.NoError(t, err)
	seen := map[string]bool{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		require.NoError(t, err)
		for _, m := range hubVariableRE.FindAllStringSubmatch(string(src), -1) {
			seen[m[1]] = true
			assert.True(t, strings.Contains(string(readme), "| `"+m[1]+"`"), "%s (read in %s) has no row in docs/configuration.md", m[1], f)
		}
	}
	for _, name := range []string{"IDEMPOTENCY_TTL", "STREAMAUTH_MAX_STREAMS_PER_TENANT", "FLAGS_MAX_STALENESS", "HUB_ADDR"} {
		assert.True(t, seen[name], "the scan missed %s", name)
	}
}
