package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/systembuilderhub/hardening/internal/problem"
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

// decodeJSON decodes the request body into dst strictly: unknown fields,
// trailing data and wrong types are 400, a body over maxBodyBytes is 413.
// On failure it writes the problem response and returns false.
func decodeJSON(w http.ResponseWriter, r *http.Request, dst any) bool {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(strings.ToLower(ct), "application/json") {
		problem.Write(w, r, problem.New(http.StatusUnsupportedMediaType, "unsupported_media_type", "send the body as application/json"))
		return false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	var maxErr *http.MaxBytesError
	if errors.As(err, &maxErr) {
		problem.Write(w, r, problem.New(http.StatusRequestEntityTooLarge, "body_too_large",
			fmt.Sprintf("the body is larger than %d bytes", maxBodyBytes)).With("limit", maxBodyBytes))
		return false
	}
	if err != nil {
		problem.Write(w, r, problem.New(http.StatusBadRequest, "invalid_body", "the body could not be read"))
		return false
	}
	if !utf8.Valid(body) {
		problem.Write(w, r, problem.New(http.StatusBadRequest, "invalid_body", "the body is not valid UTF-8"))
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
	problem.Write(w, r, problem.New(http.StatusBadRequest, "invalid_body", detail))
	return false
}
