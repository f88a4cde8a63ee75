package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
)

// The contract: every exchange a test makes with the hub is checked against
// openapi.json. checkContract validates one request and its response;
// contractTransport does it for every exchange of an http.Client.

var contract struct {
	once   sync.Once
	doc    *openapi3.T
	router routers.Router
	err    error
}

// contractRouter loads the document and builds its router once per test
// binary.
func contractRouter() (*openapi3.T, routers.Router, error) {
	contract.once.Do(func() {
		doc, err := openapi3.NewLoader().LoadFromData(openapiDoc)
		if err == nil {
			err = doc.Validate(context.Background())
		}
		if err != nil {
			contract.err = fmt.Errorf("openapi.json: %w", err)
			return
		}
		// The document's server is the default listen address; the test
		// servers listen elsewhere, so route on paths alone.
		doc.Servers = nil
		contract.doc = doc
		contract.router, contract.err = legacy.NewRouter(doc)
		// The demo and preview pages are text/html; validate them as the
		// strings the document declares.
		openapi3filter.RegisterBodyDecoder("text/html", openapi3filter.PlainBodyDecoder)
	})
	return contract.doc, contract.router, contract.err
}

// routingPath maps a request path to one the document's router matches:
// everything below /preview/{preview_id}/ is served by the preview handler
// (a ServeMux subtree), documented as /preview/{preview_id}/{path}, so the
// rest of the path becomes one segment for the router (slashes as %2F).
func routingPath(p string) string {
	rest, ok := strings.CutPrefix(p, "/preview/")
	if !ok {
		return ""
	}
	id, sub, ok := strings.Cut(rest, "/")
	if !ok || id == "" || !strings.Contains(sub, "/") {
		return ""
	}
	return "/preview/" + id + "/" + strings.ReplaceAll(sub, "/", "%2F")
}

// isCatchAll reports whether the response is the hub's answer to an
// unrouted request: 404 problem+json with reason not_found and detail "no
// such endpoint".
func isCatchAll(resp *http.Response, body []byte) bool {
	if resp.StatusCode != http.StatusNotFound || mediaType(resp.Header) != "application/problem+json" {
		return false
	}
	var p struct{ Reason, Detail string }
	return json.Unmarshal(body, &p) == nil && p.Reason == "not_found" && p.Detail == "no such endpoint"
}

func mediaType(h http.Header) string {
	mt, _, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil {
		return ""
	}
	return mt
}

// checkContract validates a real request to the hub and the hub's response
// against openapi.json; it reports every disagreement with t.Errorf (so it
// may be called from any goroutine). reqBody and respBody are the bodies
// already read (req.Body and resp.Body are not touched).
//
// It fails when the path and method are not documented (unless the hub
// answered with its catch-all 404), when the status is not documented for
// the operation, when the response's content type or body does not match,
// when an error status is not application/problem+json, and when the hub
// accepted (2xx) a request the document says is invalid. A request the
// document rejects may be answered with any documented 4xx: tests send
// malformed requests on purpose. Security requirements are not checked
// (the hub's own tests cover authentication). Bodies of text/event-stream
// responses and 101 upgrades are not validated.
func checkContract(t testing.TB, req *http.Request, reqBody []byte, resp *http.Response, respBody []byte) {
	t.Helper()
	_, router, err := contractRouter()
	if err != nil {
		t.Errorf("contract: %v", err)
		return
	}
	where := req.Method + " " + req.URL.Path
	if resp.StatusCode >= 400 && mediaType(resp.Header) != "application/problem+json" {
		t.Errorf("contract: %s: status %d with Content-Type %q, want application/problem+json", where, resp.StatusCode, resp.Header.Get("Content-Type"))
	}

	ctx := context.Background()
	rr := req.Clone(ctx)
	rr.Body = io.NopCloser(bytes.NewReader(reqBody))
	rr.ContentLength = int64(len(reqBody))
	if rp := routingPath(req.URL.Path); rp != "" {
		u := *req.URL
		u.Path, u.RawPath = rp, "" // the subtree as one segment
		rr.URL = &u
	} else if req.URL.RawPath != "" {
		// ServeMux matches the escaped path: an encoded "/" stays inside
		// its segment ({id} = "..%2F..%2Fetc"). Route the same way.
		u := *req.URL
		u.Path, u.RawPath = req.URL.RawPath, ""
		rr.URL = &u
	}
	route, pathParams, err := router.FindRoute(rr)
	if err != nil && req.Method == http.MethodHead {
		// ServeMux answers HEAD with the GET handler (openapi3filter does
		// not validate HEAD responses).
		rr.Method = http.MethodGet
		route, pathParams, err = router.FindRoute(rr)
		rr.Method = http.MethodHead
	}
	if err != nil {
		if !isCatchAll(resp, respBody) {
			t.Errorf("contract: %s is not in openapi.json (%v), but the hub answered %d", where, err, resp.StatusCode)
		}
		return
	}
	opts := &openapi3filter.Options{
		AuthenticationFunc:  openapi3filter.NoopAuthenticationFunc,
		MultiError:          true,
		SkipSettingDefaults: true,
	}
	in := &openapi3filter.RequestValidationInput{Request: rr, PathParams: pathParams, Route: route, Options: opts}
	if err := openapi3filter.ValidateRequest(ctx, in); err != nil && resp.StatusCode < 300 {
		t.Errorf("contract: %s: the hub answered %d to a request openapi.json does not allow: %v", where, resp.StatusCode, err)
	}

	ropts := &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true}
	streamed := resp.StatusCode == http.StatusSwitchingProtocols || mediaType(resp.Header) == "text/event-stream"
	if streamed {
		ropts.ExcludeResponseBody = true
	}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 resp.StatusCode,
		Header:                 resp.Header,
		Options:                ropts,
	}
	out.SetBodyBytes(respBody)
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		t.Errorf("contract: %s -> %d: %v\nbody: %.600s", where, resp.StatusCode, err, respBody)
		return
	}
	// ValidateResponse accepts any body when the document declares none.
	if !streamed && len(bytes.TrimSpace(respBody)) > 0 {
		if r := route.Operation.Responses.Status(resp.StatusCode); r != nil && r.Value != nil && len(r.Value.Content) == 0 {
			t.Errorf("contract: %s -> %d: openapi.json declares no body, the hub sent %q", where, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	}
	if streamed && resp.StatusCode == http.StatusOK {
		if r := route.Operation.Responses.Status(resp.StatusCode); r != nil && r.Value != nil && r.Value.Content.Get(resp.Header.Get("Content-Type")) == nil {
			t.Errorf("contract: %s -> %d: content type %q is not documented", where, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	}
}

// contractTransport returns a RoundTripper that sends every request through
// base (http.DefaultTransport when nil) and checks each exchange with
// checkContract. Request and response bodies are buffered (and handed on
// unchanged); a text/event-stream response or a 101 upgrade is checked
// without its body, which is left streaming.
func contractTransport(t testing.TB, base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return contractRT{t: t, base: base}
}

type contractRT struct {
	t    testing.TB
	base http.RoundTripper
}

func (c contractRT) RoundTrip(req *http.Request) (*http.Response, error) {
	var reqBody []byte
	if req.Body != nil && req.Body != http.NoBody {
		b, err := io.ReadAll(req.Body)
		_ = req.Body.Close()
		if err != nil {
			return nil, err
		}
		reqBody = b
		req = req.Clone(req.Context())
		req.Body = io.NopCloser(bytes.NewReader(b))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	}
	resp, err := c.base.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	if resp.StatusCode == http.StatusSwitchingProtocols || mediaType(resp.Header) == "text/event-stream" {
		checkContract(c.t, req, reqBody, resp, nil)
		return resp, nil
	}
	b, rerr := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(b))
	if rerr != nil && !errors.Is(rerr, io.ErrUnexpectedEOF) {
		return resp, nil // a broken body: the caller sees the short read of its own
	}
	checkContract(c.t, req, reqBody, resp, b)
	return resp, nil
}

// contractServers are the hub test servers whose exchanges call checks
// against the document (other servers, such as a bare middleware behind
// httptest, are not the hub).
var contractServers sync.Map // host:port -> struct{}

// markContractServer declares srvURL a hub server until t ends (its port
// may then serve something else).
func markContractServer(t testing.TB, srvURL string) {
	u, err := url.Parse(srvURL)
	if err != nil {
		t.Fatalf("contract: %v", err)
	}
	contractServers.Store(u.Host, struct{}{})
	t.Cleanup(func() { contractServers.Delete(u.Host) })
}

// isContractServer reports whether u addresses a hub test server.
func isContractServer(u *url.URL) bool {
	_, ok := contractServers.Load(u.Host)
	return ok
}
