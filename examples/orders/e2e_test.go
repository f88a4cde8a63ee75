package main

import (
	"bufio"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/systembuilderhub/hardening/tenancy"
)

// TestOrders: a created order, its idempotent replay, a changed body, and
// the rate of 5 orders a minute per org.
func TestOrders(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			s := start(t, mode)
			alice := s.token("alice", "acme", false, time.Hour)
			resp, body := s.do("POST", "/orders", alice, `{"sku":"tea","qty":2}`, "Idempotency-Key", "k1")
			expect(t, resp, body, http.StatusCreated, `"order_id":"ord_`)
			replay, rbody := s.do("POST", "/orders", alice, `{"sku":"tea","qty":2}`, "Idempotency-Key", "k1")
			expect(t, replay, rbody, http.StatusCreated)
			if rbody != body || replay.Header.Get("Idempotent-Replay") != "true" {
				t.Fatalf("replay: %s (Idempotent-Replay %q), want %s", rbody, replay.Header.Get("Idempotent-Replay"), body)
			}
			resp, b := s.do("POST", "/orders", alice, `{"sku":"tea","qty":3}`, "Idempotency-Key", "k1")
			expect(t, resp, b, http.StatusUnprocessableEntity)
			resp, b = s.do("POST", "/orders", alice, `{"sku":"","qty":3}`)
			expect(t, resp, b, http.StatusBadRequest, `"reason":"invalid_body"`)

			ids := map[string]bool{}
			for i := 2; i <= 4; i++ { // the 1st order counted once, the bad body once
				resp, b := s.do("POST", "/orders", alice, `{"sku":"tea","qty":1}`)
				expect(t, resp, b, http.StatusCreated)
				ids[b] = true
			}
			if len(ids) != 3 {
				t.Fatalf("order ids repeat: %v", ids)
			}
			resp, b = s.do("POST", "/orders", s.token("bob", "acme", false, time.Hour), `{"sku":"tea","qty":1}`)
			expect(t, resp, b, http.StatusTooManyRequests, `"reason":"orders_rate_exceeded"`,
				`"type":"https://orders.example.com/problems/orders_rate_exceeded"`)
			if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
				t.Fatalf("Content-Type %q", ct)
			}
			for _, h := range []string{"RateLimit", "RateLimit-Policy"} {
				if !strings.HasPrefix(resp.Header.Get(h), `"orders";`) {
					t.Fatalf("%s = %q, want the orders quota", h, resp.Header.Get(h))
				}
			}
			if resp.Header.Get("Retry-After") == "" {
				t.Fatal("no Retry-After")
			}
			resp, b = s.do("POST", "/orders", s.token("carol", "globex", false, time.Hour), `{"sku":"tea","qty":1}`)
			expect(t, resp, b, http.StatusCreated) // another org has its own quota
			resp, b = s.do("POST", "/orders", "", `{"sku":"tea","qty":1}`)
			expect(t, resp, b, http.StatusUnauthorized)
			if resp.Header.Get("WWW-Authenticate") != "Bearer" {
				t.Fatalf("WWW-Authenticate %q", resp.Header.Get("WWW-Authenticate"))
			}
		})
	}
}

// TestExports: two exports of an org run at once, a third is refused, and
// the slots come back when they end.
func TestExports(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			s := start(t, mode)
			tok := s.token("alice", "acme", false, time.Hour)
			var wg sync.WaitGroup
			statuses := make([]int, 2)
			for i := range statuses {
				wg.Go(func() {
					resp, _ := s.do("POST", "/exports?seconds=2", tok, "")
					statuses[i] = resp.StatusCode
				})
			}
			waitFor(t, func() bool {
				u, err := s.app.quotas.Usage(t.Context(), tenancy.ID("acme"))
				return err == nil && u["exports"].Used == 2
			})
			resp, b := s.do("POST", "/exports?seconds=0", tok, "")
			expect(t, resp, b, http.StatusTooManyRequests, `"reason":"exports_limit_exceeded"`)
			resp, b = s.do("POST", "/exports?seconds=0", s.token("carol", "globex", false, time.Hour), "")
			expect(t, resp, b, http.StatusOK, `"seconds":0`)
			wg.Wait()
			if statuses[0] != http.StatusOK || statuses[1] != http.StatusOK {
				t.Fatalf("long exports answered %v", statuses)
			}
			resp, b = s.do("POST", "/exports?seconds=0", tok, "")
			expect(t, resp, b, http.StatusOK)
			resp, b = s.do("POST", "/exports?seconds=x", tok, "")
			expect(t, resp, b, http.StatusBadRequest, `"reason":"invalid_query"`)
		})
	}
}

// TestEvents: the stream refuses a missing or bad token before any stream
// byte, carries the org's orders only, and ends with auth_expired.
func TestEvents(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			s := start(t, mode)
			for _, tok := range []string{"", "not-a-token", s.token("alice", "acme", false, -time.Minute)} {
				resp, b := s.do("GET", "/events", tok, "")
				expect(t, resp, b, http.StatusUnauthorized, `"status":401`, `"type":"https://orders.example.com/problems/`)
				if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" || strings.Contains(b, "event:") {
					t.Fatalf("token %q: %s %s", tok, ct, b)
				}
			}
			req, _ := http.NewRequestWithContext(t.Context(), "GET", s.url+"/events", nil)
			req.Header.Set("Authorization", "Bearer "+s.token("alice", "acme", false, 8*time.Second)) // long enough for two POSTs on a loaded -race run
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
				t.Fatalf("stream: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			waitFor(t, func() bool { return len(s.app.streams.Streams()) == 1 })
			r, b := s.do("POST", "/orders", s.token("carol", "globex", false, time.Hour), `{"sku":"other","qty":1}`)
			expect(t, r, b, http.StatusCreated)
			r, b = s.do("POST", "/orders", s.token("bob", "acme", false, time.Hour), `{"sku":"tea","qty":1}`)
			expect(t, r, b, http.StatusCreated)
			var created struct {
				OrderID string `json:"order_id"`
			}
			json.Unmarshal([]byte(b), &created)

			events := readEvents(t, resp)
			if len(events) != 2 || events[0].typ != "order_created" || !strings.Contains(events[0].data, created.OrderID) ||
				events[1].typ != "auth_expired" {
				t.Fatalf("events %+v, want order_created %s then auth_expired", events, created.OrderID)
			}
		})
	}
}

type sseEvent struct{ typ, data string }

// readEvents reads the stream to its end (within 20 s).
func readEvents(t *testing.T, resp *http.Response) []sseEvent {
	t.Helper()
	done := make(chan []sseEvent, 1)
	go func() {
		var out []sseEvent
		var ev sseEvent
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				ev.typ = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				ev.data += strings.TrimPrefix(line, "data: ")
			case line == "" && ev.typ != "":
				out, ev = append(out, ev), sseEvent{}
			}
		}
		done <- out
	}()
	select {
	case evs := <-done:
		return evs
	case <-time.After(20 * time.Second):
		resp.Body.Close()
		t.Fatal("the stream did not end within 20 s")
		return nil
	}
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within 5 s")
		}
	}
}
