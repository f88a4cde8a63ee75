package headercache

import (
	"net/http"
	"strconv"
	"testing"
)

// TestDecodeCopies: a caller that changes the headers it got does not
// change what the next replay gets, and a full cache starts over.
func TestDecodeCopies(t *testing.T) {
	var c Cache
	raw := `{"Content-Type":["application/json"]}`
	var again http.Header
	for range 3 { // decoded, then cached, then cached again
		h, err := c.Decode(raw)
		if err != nil {
			t.Fatal(err)
		}
		again = h.Clone()
		h.Set("Content-Type", "text/plain")
		h.Add("X-Extra", "1")
	}
	if want := (http.Header{"Content-Type": {"application/json"}}); again.Get("Content-Type") != "application/json" || len(again) != len(want) {
		t.Fatalf("cached header changed by a caller: %v", again)
	}
	for i := range 2 * maxEntries {
		if _, err := c.Decode(`{"X":["` + strconv.Itoa(i) + `"]}`); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(c.headers); n > maxEntries {
		t.Fatalf("cache holds %d entries, bound %d", n, maxEntries)
	}
	if _, err := c.Decode(`{`); err == nil {
		t.Fatal("bad JSON decoded")
	}
}
