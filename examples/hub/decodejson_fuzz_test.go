package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/systembuilderhub/hardening"
	"github.com/systembuilderhub/hardening/streamauth"
)

// fuzzDecoders are the hub's JSON request types, each run through the
// route Check (checkJSON) and decodeJSON as its handler does.
var fuzzDecoders = []struct {
	name  string
	check func(http.ResponseWriter, *http.Request) bool
	dst   func() any
}{
	{"create preview", checkJSON[createPreviewRequest](false), func() any { return new(createPreviewRequest) }},
	{"snapshot", checkJSON[snapshotRequest](true), func() any { return new(snapshotRequest) }},
	{"completion", checkJSON[completionRequest](false), func() any { return new(completionRequest) }},
	{"flag toggle", checkJSON[toggleRequest](false), func() any { return new(toggleRequest) }},
	{"echo", checkJSON[json.RawMessage](false), func() any { return new(json.RawMessage) }},
	{"egress check", checkJSON[egressCheckRequest](false), func() any { return new(egressCheckRequest) }},
	{"preview jwt", checkJSON[mintPreviewJWTRequest](false), func() any { return new(mintPreviewJWTRequest) }},
	{"stream revoke", checkJSON[streamauth.Selector](false), func() any { return new(streamauth.Selector) }},
}

// FuzzDecodeJSON feeds arbitrary bodies and Content-Types to every request
// type: the decode never panics, a refusal is always a 4xx problem+json
// with a reason, an acceptance writes nothing, and a route Check that
// accepts gives the handler the same bytes again.
func FuzzDecodeJSON(f *testing.F) {
	for _, s := range []string{
		`{"system_id":"sys","device_preset":"phone"}`, `{"label":"x"}`, `{"prompt":"hi","max_cost_usd":0.5}`,
		`{"enabled":true,"tenant_id":"acme","reason":"r"}`, `{"url":"https://example.com"}`, `{"host":"h","port":443}`,
		`{"preview_id":"p","system_id":"s","device_preset":"d","ttl_minutes":5}`, `{"user_id":"u"}`,
		``, `{`, `{} {}`, `[]`, `null`, `"x"`, `{"no_such_field":1}`, "{\"x\":\"\xff\"}", "\xef\xbb\xbf{}",
		`{"max_cost_usd":1e400}`, `{"ttl_minutes":-1}`, `{"enabled":"yes"}`, strings.Repeat("[", 64),
	} {
		f.Add([]byte(s), "application/json", uint8(0))
	}
	f.Add([]byte(`{}`), "text/plain", uint8(1))
	f.Add([]byte(`{}`), "", uint8(2))
	f.Add([]byte(`{"a":1}`), "application/json; charset=utf-8", uint8(4))
	f.Add([]byte(`{"":true,"00":"0000"}`), "", uint8(0x54))     // empty member name, every decoder
	f.Add([]byte("{\"\"0"), "", uint8(0))                       // truncated after a key
	f.Add([]byte(`{"a":1}`), "\xe9\x840\xb8\xc9\x9f", uint8(3)) // a Content-Type that is not UTF-8
	f.Add([]byte("\"\x10"), "", uint8(0x8c))                    // a control character in a string
	f.Fuzz(func(t *testing.T, body []byte, ctype string, which uint8) {
		d := fuzzDecoders[int(which)%len(fuzzDecoders)]
		newReq := func() *http.Request {
			r := httptest.NewRequest(http.MethodPost, "/fuzz", bytes.NewReader(body))
			if ctype != "" {
				r.Header.Set("Content-Type", ctype)
			}
			return r
		}

		w := httptest.NewRecorder()
		ok := decodeJSON(w, newReq(), d.dst())
		checkOutcome(t, d.name, ok, w)

		w = httptest.NewRecorder()
		r := newReq()
		ok = d.check(w, r)
		checkOutcome(t, d.name+" check", ok, w)
		if ok {
			again, err := io.ReadAll(r.Body)
			if err != nil || !bytes.Equal(again, body) {
				t.Fatalf("%s: the check did not restore the body: %q, %v", d.name, again, err)
			}
		}
	})
}

func checkOutcome(t *testing.T, name string, ok bool, w *httptest.ResponseRecorder) {
	t.Helper()
	if ok {
		if w.Body.Len() != 0 || len(w.Header()) != 0 {
			t.Fatalf("%s: accepted but wrote %d %q", name, w.Code, w.Body.String())
		}
		return
	}
	if w.Code < 400 || w.Code >= 500 {
		t.Fatalf("%s: refused with %d, want a 4xx: %s", name, w.Code, w.Body.String())
	}
	if ct := w.Header().Get("Content-Type"); ct != hardening.ProblemContentType {
		t.Fatalf("%s: refused with Content-Type %q", name, ct)
	}
	var p struct {
		Status int    `json:"status"`
		Reason string `json:"reason"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil || p.Reason == "" || p.Status != w.Code {
		t.Fatalf("%s: refusal is not a problem with a reason: %q (%v)", name, w.Body.String(), err)
	}
}
