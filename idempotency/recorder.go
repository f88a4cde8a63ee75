package idempotency

import (
	"bufio"
	"bytes"
	"net"
	"net/http"
)

// recorder passes the response through to the client while keeping a copy
// (status, headers at WriteHeader time, body up to the cap) to store.
type recorder struct {
	http.ResponseWriter
	allowed  []string // canonical names of the replayed headers
	max      int
	status   int
	header   http.Header
	body     bytes.Buffer
	overflow bool
	streamed bool
	hijacked bool
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 && code >= 200 {
		r.status = code
		r.header = r.snapshot()
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.WriteHeader(http.StatusOK)
	}
	if !r.overflow {
		if r.body.Len()+len(p) > r.max {
			r.overflow = true
			r.body = bytes.Buffer{}
		} else {
			r.body.Write(p)
		}
	}
	return r.ResponseWriter.Write(p)
}

// Flush marks the response as streamed: its body is not stored.
func (r *recorder) Flush() { _ = r.FlushError() }

// FlushError is used by http.ResponseController.
func (r *recorder) FlushError() error {
	if r.status == 0 {
		r.WriteHeader(http.StatusOK)
	}
	r.streamed = true
	return http.NewResponseController(r.ResponseWriter).Flush()
}

// Hijack hands the connection over; the response is stored without a body.
func (r *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, rw, err := http.NewResponseController(r.ResponseWriter).Hijack()
	if err == nil {
		r.hijacked = true
	}
	return c, rw, err
}

// Unwrap lets http.ResponseController reach the other abilities
// (deadlines, full duplex) of the underlying writer.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// snapshot copies the allow-listed headers as they are now, their values
// in one backing array.
func (r *recorder) snapshot() http.Header {
	h := r.ResponseWriter.Header()
	n := 0
	for _, name := range r.allowed {
		n += len(h[name])
	}
	out := make(http.Header, len(r.allowed))
	if n == 0 {
		return out
	}
	vals := make([]string, 0, n)
	for _, name := range r.allowed {
		if vs := h[name]; len(vs) > 0 {
			vals = append(vals, vs...)
			out[name] = vals[len(vals)-len(vs) : len(vals) : len(vals)]
		}
	}
	return out
}

// record returns the response to store.
func (r *recorder) record() Record {
	status := r.status
	if status == 0 {
		status = http.StatusOK
		r.header = r.snapshot()
	}
	rec := Record{StatusCode: status, Header: r.header}
	if r.overflow || r.streamed || r.hijacked {
		rec.BodyOmitted = true
	} else {
		// The recorder is dropped after this: its buffer becomes the
		// record's body without a copy.
		rec.Body = r.body.Bytes()
	}
	return rec
}
