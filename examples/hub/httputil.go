package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"unicode/utf8"

	"github.com/systembuilderhub/hardening"
)

// maxBodyBytes caps every JSON request body the hub decodes.
const maxBodyBytes = 1 << 20

// writeJSON writes v as a JSON response with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// validator is a request body with rules beyond its JSON shape: decodeJSON
// runs validate after a successful decode (it may also fill defaults).
type validator interface{ validate() error }

// problemError is a validate error with a problem of its own (another
// reason, extension members); other validate errors are 400 invalid_body.
type problemError interface {
	error
	problem() hardening.Problem
}

// decodeJSON decodes the request body into dst strictly: unknown fields,
// trailing data and wrong types are 400, a body over maxBodyBytes is 413,
// and a dst with a validate method must pass it (400 invalid_body, or the
// problem of a problemError).
// On failure it writes the problem response and returns false.
func decodeJSON(w http.ResponseWriter, r *http.Request, dst any) bool {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(strings.ToLower(ct), "application/json") {
		hardening.WriteProblem(w, r, hardening.NewProblem(http.StatusUnsupportedMediaType, "unsupported_media_type", "send the body as application/json"))
		return false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	var maxErr *http.MaxBytesError
	if errors.As(err, &maxErr) {
		hardening.WriteProblem(w, r, hardening.NewProblem(http.StatusRequestEntityTooLarge, "body_too_large",
			fmt.Sprintf("the body is larger than %d bytes", maxBodyBytes)).With("limit", maxBodyBytes))
		return false
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		hardening.WriteProblem(w, r, hardening.NewProblem(http.StatusBadRequest, "invalid_body", "the body did not arrive within the server's body timeout"))
		return false
	}
	if err != nil {
		hardening.WriteProblem(w, r, hardening.NewProblem(http.StatusBadRequest, "invalid_body", "the body could not be read"))
		return false
	}
	if !utf8.Valid(body) {
		hardening.WriteProblem(w, r, hardening.NewProblem(http.StatusBadRequest, "invalid_body", "the body is not valid UTF-8"))
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
	if err == nil {
		if v, ok := dst.(validator); ok {
			if verr := v.validate(); verr != nil {
				var pe problemError
				if errors.As(verr, &pe) {
					hardening.WriteProblem(w, r, pe.problem())
				} else {
					hardening.WriteProblem(w, r, hardening.NewProblem(http.StatusBadRequest, "invalid_body", verr.Error()))
				}
				return false
			}
		}
		return true
	}
	var syntaxErr *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	detail := "the body is not valid JSON for this endpoint"
	switch {
	case errors.Is(err, io.EOF):
		detail = "the body is empty; a JSON object is required"
	case errors.As(err, &syntaxErr):
		detail = fmt.Sprintf("malformed JSON at byte %d", syntaxErr.Offset)
	case errors.As(err, &typeErr):
		detail = fmt.Sprintf("field %q has the wrong type (want %s)", typeErr.Field, typeErr.Type)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		detail = "unknown field " + strings.TrimPrefix(err.Error(), "json: unknown field ")
	case strings.HasPrefix(err.Error(), "trailing data"):
		detail = err.Error()
	}
	hardening.WriteProblem(w, r, hardening.NewProblem(http.StatusBadRequest, "invalid_body", detail))
	return false
}

// precheck runs a route's Check before next: a request the handler would
// reject is answered here, before the idempotency middleware stores
// anything under its key.
func precheck(check func(http.ResponseWriter, *http.Request) bool, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if check(w, r) {
			next.ServeHTTP(w, r)
		}
	})
}

// checkJSON returns a route Check that decodes the body strictly into a
// new T, as the handler will (validate included), then gives the handler
// the same bytes again. optional lets an absent body through.
func checkJSON[T any](optional bool) func(http.ResponseWriter, *http.Request) bool {
	return func(w http.ResponseWriter, r *http.Request) bool {
		if optional && !hasBody(r) {
			return true
		}
		orig := r.Body
		var buf bytes.Buffer
		r.Body = readCloser{io.TeeReader(orig, &buf), orig}
		var v T
		ok := decodeJSON(w, r, &v)
		r.Body = readCloser{bytes.NewReader(buf.Bytes()), orig}
		return ok
	}
}

type readCloser struct {
	io.Reader
	io.Closer
}

// queryValues parses the query string strictly: a malformed escape is a
// 400 invalid_query problem (url.URL.Query drops such pairs silently).
func queryValues(w http.ResponseWriter, r *http.Request) (url.Values, bool) {
	v, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		hardening.WriteProblem(w, r, hardening.NewProblem(http.StatusBadRequest, "invalid_query", "the query string is malformed"))
		return nil, false
	}
	return v, true
}
