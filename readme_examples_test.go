package hardening_test

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// readmeExampleRE finds each README snippet marked as the body of an
// Example function: the marker comment names the file and the function,
// and the ```go block right after it is the snippet.
var readmeExampleRE = regexp.MustCompile("(?m)^<!-- example: (\\S+) (Example\\w*) -->\n```go\n((?s:.*?))```\n")

// exampleBody returns the body of func name() in src, one tab of
// indentation removed, as the README shows it.
func exampleBody(src, name string) (string, bool) {
	start := strings.Index(src, "\nfunc "+name+"() {\n")
	if start < 0 {
		return "", false
	}
	rest := src[start+len("\nfunc "+name+"() {\n"):]
	end := strings.Index(rest, "\n}\n")
	if end < 0 {
		return "", false
	}
	lines := strings.Split(rest[:end], "\n")
	for i, l := range lines {
		lines[i] = strings.TrimPrefix(l, "\t")
	}
	return strings.Join(lines, "\n") + "\n", true
}

// TestREADMEExamplesMatch keeps the README's "Embed it in your service"
// snippets identical to the Example functions that compile and run them.
func TestREADMEExamplesMatch(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	require.NoError(t, err)
	matches := readmeExampleRE.FindAllStringSubmatch(string(readme), -1)
	require.GreaterOrEqual(t, len(matches), 3, "the composed service, one authenticator for REST and streams, the webhook client")
	for _, m := range matches {
		file, name, snippet := m[1], m[2], m[3]
		t.Run(file+"/"+name, func(t *testing.T) {
			src, err := os.ReadFile(file)
			require.NoError(t, err)
			body, ok := exampleBody(string(src), name)
			require.True(t, ok, "%s has no func %s()", file, name)
			assert.Equal(t, body, snippet, "README snippet and %s in %s differ", name, file)
		})
	}
}
