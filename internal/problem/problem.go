// Package problem writes RFC 9457 "application/problem+json" error
// responses. Every package of the kit answers errors through it, so clients
// see one shape everywhere: type, title, status, detail, instance and
// extension members such as reason, limit or retry_after_seconds.
package problem

import (
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"time"
)

// ContentType is the media type of a problem document.
const ContentType = "application/problem+json"

// TypeBase prefixes the reason code to form a problem's type URI when the
// Problem does not set Type itself.
const TypeBase = "https://github.com/systembuilderhub/hardening/blob/main/docs/problems.md#"

// Problem is one RFC 9457 problem detail. The zero value of every field is
// valid: an empty Type becomes TypeBase+Reason (or "about:blank" without a
// reason), an empty Title becomes the status text.
type Problem struct {
	// Type is a URI reference identifying the problem type.
	Type string
	// Title is a short human-readable summary of the problem type.
	Title string
	// Status is the HTTP status code; 0 means 500.
	Status int
	// Detail is a human-readable explanation of this occurrence. It must
	// never carry secrets or internal error text.
	Detail string
	// Instance is a URI reference identifying this occurrence; empty means
	// the request path.
	Instance string
	// Reason is a stable, machine-readable code written as the "reason"
	// extension member (for example "schema_pending").
	Reason string
	// RetryAfter, when positive, sets the Retry-After header (whole seconds,
	// rounded up) and the retry_after_seconds member.
	RetryAfter time.Duration
	// Extensions are further members. They cannot replace the standard
	// members above.
	Extensions map[string]any
}

// New returns a Problem with the given status, reason code and detail.
func New(status int, reason, detail string) Problem {
	return Problem{Status: status, Reason: reason, Detail: detail}
}

// With returns a copy of p with the extension member key set to value.
func (p Problem) With(key string, value any) Problem {
	ext := make(map[string]any, len(p.Extensions)+1)
	for k, v := range p.Extensions {
		ext[k] = v
	}
	ext[key] = value
	p.Extensions = ext
	return p
}

// Members returns the JSON object members of p after defaults are applied.
// instance is used when p.Instance is empty.
func (p Problem) Members(instance string) map[string]any {
	status := p.Status
	if status == 0 {
		status = http.StatusInternalServerError
	}
	m := make(map[string]any, len(p.Extensions)+7)
	for k, v := range p.Extensions {
		m[k] = v
	}
	typ := p.Type
	if typ == "" {
		typ = "about:blank"
		if p.Reason != "" {
			typ = TypeBase + p.Reason
		}
	}
	title := p.Title
	if title == "" {
		title = http.StatusText(status)
	}
	m["type"] = typ
	m["title"] = title
	m["status"] = status
	if p.Detail != "" {
		m["detail"] = p.Detail
	}
	if p.Instance != "" {
		instance = p.Instance
	}
	if instance != "" {
		m["instance"] = instance
	}
	if p.Reason != "" {
		m["reason"] = p.Reason
	}
	if secs := RetryAfterSeconds(p.RetryAfter); secs > 0 {
		m["retry_after_seconds"] = secs
	}
	return m
}

// RetryAfterSeconds rounds d up to whole seconds, as Retry-After requires.
// It returns 0 for d <= 0.
func RetryAfterSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64(math.Ceil(d.Seconds()))
}

// Write writes p to w. r may be nil; when set, its URL path is the default
// instance. Write sets Content-Type, Cache-Control: no-store and, when
// p.RetryAfter is positive, Retry-After. Headers the caller set before
// (for example WWW-Authenticate or RateLimit) are kept.
func Write(w http.ResponseWriter, r *http.Request, p Problem) {
	instance := ""
	if r != nil && r.URL != nil {
		instance = r.URL.Path
	}
	m := p.Members(instance)
	body, err := json.Marshal(m)
	if err != nil {
		// An extension value did not marshal: drop extensions rather than
		// fail to answer.
		p.Extensions = nil
		body, _ = json.Marshal(p.Members(instance))
	}
	h := w.Header()
	h.Set("Content-Type", ContentType)
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Del("Content-Length")
	if secs := RetryAfterSeconds(p.RetryAfter); secs > 0 {
		h.Set("Retry-After", strconv.FormatInt(secs, 10))
	}
	w.WriteHeader(m["status"].(int))
	_, _ = w.Write(append(body, '\n'))
}

// WriteStatus writes a problem with only a status, reason and detail.
func WriteStatus(w http.ResponseWriter, r *http.Request, status int, reason, detail string) {
	Write(w, r, New(status, reason, detail))
}
