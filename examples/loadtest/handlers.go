package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"html/template"
	"io"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/systembuilderhub/hardening"
)

// The handler work of the five scenarios, written once and served both by
// the bare server (no middleware) and by the in-process memory chain. They
// mirror the hub's handlers (examples/hub: echoHandler, createSnapshotHandler,
// previewPageHandler, listFlags, writeJSON, decodeJSON) line for line in
// what they compute; the hub's own copies cannot be imported from package
// main.

const maxBodyBytes = 1 << 20

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// decodeJSON reads and strictly decodes the body like the hub's decodeJSON
// (size cap, UTF-8 check, unknown fields and trailing data rejected).
func decodeJSON(w http.ResponseWriter, r *http.Request, dst any) bool {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(strings.ToLower(ct), "application/json") {
		hardening.WriteProblem(w, r, hardening.NewProblem(http.StatusUnsupportedMediaType, "unsupported_media_type", "send the body as application/json"))
		return false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil || !utf8.Valid(body) {
		hardening.WriteProblem(w, r, hardening.NewProblem(http.StatusBadRequest, "invalid_body", "the body could not be read"))
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	err = dec.Decode(dst)
	if err == nil {
		if dec.More() {
			err = errors.New("trailing data after the JSON value")
		} else if _, terr := dec.Token(); terr != io.EOF {
			err = errors.New("trailing data after the JSON value")
		}
	}
	if err != nil {
		hardening.WriteProblem(w, r, hardening.NewProblem(http.StatusBadRequest, "invalid_body", "the body is not valid JSON for this endpoint"))
		return false
	}
	return true
}

func newID(prefix string) string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// echo is POST /api/v1/echo: 201 with a fresh id and the body.
func echo(w http.ResponseWriter, r *http.Request) {
	var body json.RawMessage
	if !decodeJSON(w, r, &body) {
		return
	}
	out := map[string]any{}
	var obj map[string]json.RawMessage
	if json.Unmarshal(body, &obj) == nil {
		for k, v := range obj {
			out[k] = v
		}
	}
	out["id"] = newID("echo_")
	out["echo"] = body
	writeJSON(w, http.StatusCreated, out)
}

type snapshotCreated struct {
	SnapshotID string    `json:"snapshot_id"`
	SystemID   string    `json:"system_id"`
	TenantID   string    `json:"tenant_id"`
	Label      string    `json:"label,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
}

// snapshot is the work of POST /api/v1/systems/{system_id}/snapshots after
// the quota decision (the bare server makes none).
func snapshot(w http.ResponseWriter, r *http.Request, tenant string) {
	var req struct {
		Label string `json:"label"`
	}
	if r.ContentLength > 0 && !decodeJSON(w, r, &req) {
		return
	}
	writeJSON(w, http.StatusCreated, snapshotCreated{SnapshotID: newID("snap_"), SystemID: r.PathValue("system_id"), TenantID: tenant, Label: req.Label, CreatedAt: time.Now().UTC()})
}

var previewPage = template.Must(template.New("preview").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Preview {{.ID}}</title></head>
<body>
<h1>Preview {{.ID}}</h1>
<p>System <code>{{.SystemID}}</code>, device <code>{{.Device}}</code>, tenant <code>{{.TenantID}}</code>.</p>
<p>Path <code>{{.Path}}</code>. Access expires at {{.Expires}}.</p>
</body></html>
`))

// pageClaims is what the preview page shows of the verified token.
type pageClaims struct {
	PreviewID, SystemID, Device, TenantID string
	ExpiresAt                             time.Time
}

// previewPageOf is GET /preview/{preview_id}/ given the verified claims.
func previewPageOf(w http.ResponseWriter, r *http.Request, c pageClaims) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'self'")
	w.WriteHeader(http.StatusOK)
	_ = previewPage.Execute(w, map[string]string{
		"ID": c.PreviewID, "SystemID": c.SystemID, "Device": c.Device, "TenantID": c.TenantID,
		"Path": r.URL.Path, "Expires": c.ExpiresAt.UTC().Format(time.RFC3339),
	})
}

type flagView struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	Default     bool   `json:"default"`
	Enabled     bool   `json:"enabled"`
	Source      string `json:"source"`
}

// hubFlagDefs are the hub's demo flags (examples/hub/flags.go).
var hubFlagDefs = []flagView{
	{Name: "preview.device-presets", Default: true, Description: "Offer device presets (phone, tablet, desktop) when creating a preview."},
	{Name: "llm.streaming", Default: false, Description: "Stream LLM answers to the browser as they are generated."},
	{Name: "preview.snapshots", Default: false, Description: "Let users take snapshots of a running preview."},
}

func writeFlags(w http.ResponseWriter, tenant string, out []flagView) {
	writeJSON(w, http.StatusOK, map[string]any{"tenant_id": tenant, "flags": out})
}

// Fixed values the bare server answers with in place of verified ones.
const (
	bareTenant = "acme"
	bareSystem = "sys_load"
)

// bareHandler serves the five scenarios' routes with the same handler work
// and no middleware at all: no authentication, idempotency, quota or flag
// store. Credentials the client sends are ignored.
func bareHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/echo", echo)
	mux.HandleFunc("POST /api/v1/systems/{system_id}/snapshots", func(w http.ResponseWriter, r *http.Request) {
		snapshot(w, r, bareTenant)
	})
	mux.HandleFunc("GET /preview/{preview_id}/", func(w http.ResponseWriter, r *http.Request) {
		previewPageOf(w, r, pageClaims{PreviewID: r.PathValue("preview_id"), SystemID: bareSystem, Device: "desktop", TenantID: bareTenant, ExpiresAt: time.Now().Add(time.Hour)})
	})
	mux.HandleFunc("GET /api/v1/feature-flags", func(w http.ResponseWriter, r *http.Request) {
		out := make([]flagView, 0, len(hubFlagDefs))
		for _, f := range hubFlagDefs {
			f.Enabled, f.Source = f.Default, "default"
			out = append(out, f)
		}
		writeFlags(w, bareTenant, out)
	})
	// Fixture setup on the bare server: a "preview" to open.
	mux.HandleFunc("POST /api/v1/previews", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusCreated, map[string]string{"preview_id": "pv_bare", "token": "bare"})
	})
	return mux
}
