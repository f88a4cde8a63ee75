package main

import (
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestInlineHashes(t *testing.T) {
	hash := func(s string) string {
		sum := sha256.Sum256([]byte(s))
		return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
	}
	for _, tc := range []struct {
		name, page, tag, want string
	}{
		{"none", "<p>hi</p>", "script", "'none'"},
		{"one", "<script>a()</script>", "script", hash("a()")},
		{"two", "<script>a()</script><p></p><script>\nb()\n</script>", "script", hash("a()") + " " + hash("\nb()\n")},
		{"unterminated", "<script>a()", "script", "'none'"},
		{"style only", "<style>p{}</style><script>x</script>", "style", hash("p{}")},
		{"attributes are not matched", `<script src="x.js"></script>`, "script", "'none'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, inlineHashes([]byte(tc.page), tc.tag))
		})
	}
}

// TestDemoCSP checks the served page's policy: no 'unsafe-inline', and
// exactly the page's one script and one style are allowed.
func TestDemoCSP(t *testing.T) {
	csp := demoCSP(demoPage)
	assert.NotContains(t, csp, "unsafe")
	for _, d := range []string{"default-src 'none'", "connect-src 'self'", "base-uri 'none'", "form-action 'none'", "frame-ancestors 'none'"} {
		assert.Contains(t, csp, d)
	}
	for _, tag := range []string{"script", "style"} {
		assert.Equal(t, 1, strings.Count(string(demoPage), "<"+tag+">"), tag)
		h := inlineHashes(demoPage, tag)
		assert.True(t, strings.HasPrefix(h, "'sha256-"), h)
		assert.Contains(t, csp, tag+"-src "+h+";")
	}
}
