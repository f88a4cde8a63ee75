package main

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"net/http"
	"strings"
)

//go:embed web/index.html
var demoPage []byte

// demoCSP is the demo page's Content-Security-Policy: nothing but its own
// inline <script> and <style> blocks (allowed by hash) runs or applies, and
// it may connect only to its own origin (fetch and EventSource).
func demoCSP(page []byte) string {
	return "default-src 'none'; connect-src 'self'; " +
		"script-src " + inlineHashes(page, "script") + "; " +
		"style-src " + inlineHashes(page, "style") + "; " +
		"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
}

// inlineHashes returns the CSP sources ('sha256-...') of every <tag> block
// of page (written exactly "<tag>", without attributes), or 'none'.
func inlineHashes(page []byte, tag string) string {
	open, end := []byte("<"+tag+">"), []byte("</"+tag+">")
	var srcs []string
	for rest := page; ; {
		i := bytes.Index(rest, open)
		if i < 0 {
			break
		}
		rest = rest[i+len(open):]
		j := bytes.Index(rest, end)
		if j < 0 {
			break
		}
		sum := sha256.Sum256(rest[:j])
		srcs = append(srcs, "'sha256-"+base64.StdEncoding.EncodeToString(sum[:])+"'")
		rest = rest[j+len(end):]
	}
	if len(srcs) == 0 {
		return "'none'"
	}
	return strings.Join(srcs, " ")
}

// demoHandler serves the demo page at GET /. Its inline script and style
// are allowed by hash in the Content-Security-Policy, so nothing else can
// run.
func demoHandler() http.Handler {
	csp := demoCSP(demoPage)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Content-Security-Policy", csp)
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		_, _ = w.Write(demoPage)
	})
}
