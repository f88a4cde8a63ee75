package main

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"net/http"
)

//go:embed web/index.html
var demoPage []byte

// demoHandler serves the demo page at GET /. Its one inline script is
// allowed by hash in the Content-Security-Policy, so nothing else can run.
func demoHandler() http.Handler {
	csp := "default-src 'none'; connect-src 'self'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
	if start := bytes.Index(demoPage, []byte("<script>")); start >= 0 {
		if end := bytes.Index(demoPage[start:], []byte("</script>")); end >= 0 {
			sum := sha256.Sum256(demoPage[start+len("<script>") : start+end])
			csp += "; script-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
		}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Content-Security-Policy", csp)
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		_, _ = w.Write(demoPage)
	})
}
