package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/require"
)

// e2eClient talks to running hub binaries. Every exchange goes through
// contractTransport, so each request and response is checked against the
// OpenAPI document.
type e2eClient struct {
	t *testing.T
	// api follows no redirects and keeps cookies (the preview cookie).
	api *http.Client
	// bare has no cookie jar: a browser that never saw the preview link.
	bare *http.Client
	// stream has no client timeout (SSE and WebSocket; coder/websocket
	// refuses a client with one): requests are bounded by contexts.
	stream *http.Client
}

func newE2EClient(t *testing.T) *e2eClient {
	t.Helper()
	tr := &http.Transport{MaxIdleConnsPerHost: 8, IdleConnTimeout: 5 * time.Second}
	t.Cleanup(tr.CloseIdleConnections)
	rt := contractTransport(t, tr)
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	noRedirect := func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &e2eClient{
		t:      t,
		api:    &http.Client{Transport: rt, Jar: jar, Timeout: 20 * time.Second, CheckRedirect: noRedirect},
		bare:   &http.Client{Transport: rt, Timeout: 20 * time.Second, CheckRedirect: noRedirect},
		stream: &http.Client{Transport: rt, CheckRedirect: noRedirect},
	}
}

// e2eResp is a response read in full.
type e2eResp struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body as an object.
func (r e2eResp) JSON(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(r.Body, &m), "%d %s", r.Status, r.Body)
	return m
}

// String returns the body for assertion messages.
func (r e2eResp) String() string { return strconv.Itoa(r.Status) + " " + string(r.Body) }

// send sends one request with c: body is JSON-encoded unless it is a
// string (sent as is) or nil; hdr are header name/value pairs.
func (e *e2eClient) send(c *http.Client, method, url, token string, body any, hdr ...string) e2eResp {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		raw, ok := body.(string)
		if !ok {
			b, err := json.Marshal(body)
			require.NoError(e.t, err)
			raw = string(b)
		}
		rd = strings.NewReader(raw)
	}
	req, err := http.NewRequest(method, url, rd)
	require.NoError(e.t, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	require.NoError(e.t, err, "%s %s", method, url)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(e.t, err)
	return e2eResp{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// do sends with the API client (cookie jar, no redirects).
func (e *e2eClient) do(method, url, token string, body any, hdr ...string) e2eResp {
	e.t.Helper()
	return e.send(e.api, method, url, token, body, hdr...)
}

// e2eSSEEvent is one Server-Sent Event.
type e2eSSEEvent struct{ Type, Data string }

// e2eSSE is an open SSE stream read in the background.
type e2eSSE struct {
	Status int
	events chan e2eSSEEvent
	done   chan struct{}
}

// openSSE opens GET base/api/v1/streams/events with the token in the
// access_token query parameter (as a browser's EventSource does). The stream
// is closed at cleanup.
func (e *e2eClient) openSSE(base, token string) *e2eSSE {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v1/streams/events?access_token="+token, nil)
	require.NoError(e.t, err)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := e.stream.Do(req)
	if err != nil {
		cancel()
		require.NoError(e.t, err)
	}
	s := &e2eSSE{Status: resp.StatusCode, events: make(chan e2eSSEEvent, 256), done: make(chan struct{})}
	if resp.StatusCode != http.StatusOK {
		_ = resp.Body.Close()
		cancel()
		close(s.events)
		close(s.done)
		return s
	}
	require.Contains(e.t, resp.Header.Get("Content-Type"), "text/event-stream")
	go func() {
		defer close(s.done)
		defer close(s.events)
		sc := bufio.NewScanner(resp.Body)
		var ev e2eSSEEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.Type != "" || ev.Data != "" {
					select {
					case s.events <- ev:
					default: // a test that stopped reading: drop
					}
				}
				ev = e2eSSEEvent{}
			case strings.HasPrefix(line, "event:"):
				ev.Type = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
			case strings.HasPrefix(line, "data:"):
				ev.Data += strings.TrimSpace(strings.TrimPrefix(line, "data:"))
			}
		}
	}()
	e.t.Cleanup(func() { cancel(); _ = resp.Body.Close(); <-s.done })
	return s
}

// waitFor returns the first event of type typ (skipping others) within d.
func (s *e2eSSE) waitFor(t *testing.T, typ string, d time.Duration) e2eSSEEvent {
	t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		select {
		case ev, ok := <-s.events:
			if !ok {
				t.Fatalf("SSE stream ended before event %q", typ)
			}
			if ev.Type == typ {
				return ev
			}
		case <-deadline.C:
			t.Fatalf("no SSE event %q within %s", typ, d)
		}
	}
}

// waitEnd waits until the hub ends the stream.
func (s *e2eSSE) waitEnd(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case <-s.done:
	case <-time.After(d):
		t.Fatalf("SSE stream did not end within %s", d)
	}
}

// e2eWSMessage is one message of the hub's WebSocket stream.
type e2eWSMessage struct {
	Type  string          `json:"type"`
	ID    string          `json:"id"`
	Event string          `json:"event"`
	Data  json.RawMessage `json:"data"`
}

// e2eWS is an open WebSocket stream read in the background.
type e2eWS struct {
	msgs chan e2eWSMessage
	done chan struct{}
	err  error // the read error that ended the stream, set before done closes
}

// dialWS opens base/api/v1/streams/ws with the token in access_token. The
// connection is closed at cleanup.
func (e *e2eClient) dialWS(base, token string) *e2eWS {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	url := "ws" + strings.TrimPrefix(base, "http") + "/api/v1/streams/ws?access_token=" + token
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPClient: e.stream})
	require.NoError(e.t, err)
	w := &e2eWS{msgs: make(chan e2eWSMessage, 256), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		defer close(w.msgs)
		for {
			_, b, err := c.Read(context.Background())
			if err != nil {
				w.err = err
				return
			}
			var m e2eWSMessage
			if json.Unmarshal(b, &m) == nil {
				select {
				case w.msgs <- m:
				default:
				}
			}
		}
	}()
	e.t.Cleanup(func() { _ = c.CloseNow(); <-w.done })
	return w
}

// waitFor returns the first message with event typ within d.
func (w *e2eWS) waitFor(t *testing.T, typ string, d time.Duration) e2eWSMessage {
	t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		select {
		case m, ok := <-w.msgs:
			if !ok {
				t.Fatalf("WebSocket ended before event %q: %v", typ, w.err)
			}
			if m.Event == typ {
				return m
			}
		case <-deadline.C:
			t.Fatalf("no WebSocket event %q within %s", typ, d)
		}
	}
}

// waitClose waits until the hub closes the connection and returns its close
// status.
func (w *e2eWS) waitClose(t *testing.T, d time.Duration) (websocket.StatusCode, string) {
	t.Helper()
	select {
	case <-w.done:
	case <-time.After(d):
		t.Fatalf("WebSocket was not closed within %s", d)
	}
	var ce websocket.CloseError
	if !errors.As(w.err, &ce) {
		return -1, ""
	}
	return ce.Code, ce.Reason
}

// metrics reads base/metrics as series -> value ("name{labels}" as the
// exposition writes it, labels sorted by name).
func (e *e2eClient) metrics(base string) map[string]float64 {
	e.t.Helper()
	r := e.do(http.MethodGet, base+"/metrics", "", nil)
	require.Equal(e.t, http.StatusOK, r.Status)
	out := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(r.Body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] = v
		}
	}
	return out
}

// e2eSuffix is a random suffix that keeps each run's tenants and keys
// apart on a shared Redis.
func e2eSuffix() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
