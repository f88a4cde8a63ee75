package tokencache

import (
	"crypto/sha256"
	"fmt"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func TestKeyOfIsSHA256(t *testing.T) {
	if KeyOf("a.b.c") != Key(sha256.Sum256([]byte("a.b.c"))) {
		t.Fatal("KeyOf is not sha256")
	}
	if KeyOf("a.b.c") == KeyOf("a.b.d") {
		t.Fatal("distinct tokens share a key")
	}
}

func TestGetPut(t *testing.T) {
	c := New[string](8)
	k := KeyOf("tok")
	if _, ok := c.Get(k, t0); ok {
		t.Fatal("hit on an empty cache")
	}
	c.Put(k, "v", time.Time{}, t0.Add(time.Minute), t0)
	if v, ok := c.Get(k, t0); !ok || v != "v" {
		t.Fatalf("Get = %q, %v", v, ok)
	}
	c.Put(k, "w", time.Time{}, t0.Add(time.Minute), t0)
	if v, _ := c.Get(k, t0); v != "w" || c.Len() != 1 {
		t.Fatalf("replace: %q, len %d", v, c.Len())
	}
	c.Delete(k)
	if _, ok := c.Get(k, t0); ok || c.Len() != 0 {
		t.Fatal("hit after Delete")
	}
}

// An entry is never used at or after its until (the token's exp), and is
// dropped when read then.
func TestEntryNeverOutlivesUntil(t *testing.T) {
	c := New[string](8)
	k := KeyOf("tok")
	exp := t0.Add(time.Minute)
	c.Put(k, "v", time.Time{}, exp, t0)
	if _, ok := c.Get(k, exp.Add(-time.Nanosecond)); !ok {
		t.Fatal("miss before exp")
	}
	if _, ok := c.Get(k, exp); ok {
		t.Fatal("hit at exp")
	}
	if c.Len() != 0 {
		t.Fatal("expired entry kept after a read")
	}
}

func TestEntryNotUsedBeforeFrom(t *testing.T) {
	c := New[string](8)
	k := KeyOf("tok")
	c.Put(k, "v", t0.Add(time.Second), t0.Add(time.Minute), t0)
	if _, ok := c.Get(k, t0); ok {
		t.Fatal("hit before from")
	}
	if _, ok := c.Get(k, t0.Add(time.Second)); !ok {
		t.Fatal("miss at from")
	}
}

func TestPutOfExpiredIsIgnored(t *testing.T) {
	c := New[string](8)
	c.Put(KeyOf("tok"), "v", time.Time{}, t0, t0)
	if c.Len() != 0 {
		t.Fatal("stored an entry already expired")
	}
}

func TestDisabled(t *testing.T) {
	for _, size := range []int{0, -1} {
		c := New[string](size)
		if c != nil {
			t.Fatalf("New(%d) is not nil", size)
		}
		c.Put(KeyOf("tok"), "v", time.Time{}, t0.Add(time.Minute), t0)
		if _, ok := c.Get(KeyOf("tok"), t0); ok || c.Len() != 0 || c.Cap() != 0 {
			t.Fatal("a disabled cache stored something")
		}
		c.Delete(KeyOf("tok"))
	}
}

// A flood of distinct tokens never grows the cache past its size.
func TestBounded(t *testing.T) {
	for _, size := range []int{1, 3, 16, 17, 100, 1024} {
		c := New[int](size)
		if c.Cap() > size || c.Cap() < size/2 {
			t.Fatalf("size %d: cap %d", size, c.Cap())
		}
		for i := range 20 * size {
			c.Put(KeyOf(fmt.Sprint("tok", i)), i, time.Time{}, t0.Add(time.Hour), t0)
			if c.Len() > size {
				t.Fatalf("size %d: len %d after %d puts", size, c.Len(), i+1)
			}
		}
	}
}

// CLOCK keeps an entry that is read between insertions.
func TestHotEntrySurvivesFlood(t *testing.T) {
	c := New[int](64)
	hot := KeyOf("hot")
	c.Put(hot, -1, time.Time{}, t0.Add(time.Hour), t0)
	for i := range 10_000 {
		c.Put(KeyOf(fmt.Sprint("tok", i)), i, time.Time{}, t0.Add(time.Hour), t0)
		if _, ok := c.Get(hot, t0); !ok {
			t.Fatalf("hot entry evicted after %d puts", i+1)
		}
	}
}

// Expired entries are reused before live ones are evicted.
func TestExpiredEvictedFirst(t *testing.T) {
	c := New[int](1)
	live, dead := KeyOf("live"), KeyOf("dead")
	c.Put(dead, 1, time.Time{}, t0.Add(time.Second), t0)
	c.Put(live, 2, time.Time{}, t0.Add(time.Hour), t0.Add(2*time.Second))
	if _, ok := c.Get(live, t0.Add(2*time.Second)); !ok || c.Len() != 1 {
		t.Fatal("live entry not stored over the expired one")
	}
}

// Many goroutines read, write and delete overlapping keys: run with -race.
// Every hit returns the value stored under its own key, and the size bound
// holds throughout.
func TestConcurrent(t *testing.T) {
	const size, keys, workers = 64, 256, 8
	c := New[int](size)
	ks := make([]Key, keys)
	for i := range ks {
		ks[i] = KeyOf(fmt.Sprint("tok", i))
	}
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for n := range 5000 {
				i := (n*7 + w*13) % keys
				now := t0.Add(time.Duration(n) * time.Millisecond)
				switch n % 5 {
				case 0, 1:
					c.Put(ks[i], i, time.Time{}, now.Add(time.Second), now)
				case 4:
					c.Delete(ks[i])
				default:
					if v, ok := c.Get(ks[i], now); ok && v != i {
						errs <- fmt.Errorf("key %d returned %d", i, v)
						return
					}
				}
				if n%500 == 0 && c.Len() > size {
					errs <- fmt.Errorf("len %d over %d", c.Len(), size)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// A hit and the key computation allocate nothing.
func TestHitAllocatesNothing(t *testing.T) {
	type claims struct {
		a, b string
		t    time.Time
	}
	c := New[claims](16)
	tok := "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1In0.sig"
	c.Put(KeyOf(tok), claims{a: "x", b: "y", t: t0}, time.Time{}, t0.Add(time.Hour), t0)
	n := testing.AllocsPerRun(100, func() {
		if _, ok := c.Get(KeyOf(tok), t0); !ok {
			t.Fatal("miss")
		}
	})
	if n != 0 {
		t.Fatalf("%v allocations per hit", n)
	}
}

func BenchmarkHit(b *testing.B) {
	c := New[string](1024)
	tok := "eyJhbGciOiJIUzI1NiIsImtpZCI6IjIwMjYwMTAyIn0.eyJzdWIiOiJ1c2VyIiwidGlkIjoidGVuYW50In0.c2lnbmF0dXJlc2lnbmF0dXJlc2lnbmF0dXJl"
	c.Put(KeyOf(tok), "v", time.Time{}, t0.Add(time.Hour), t0)
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := c.Get(KeyOf(tok), t0); !ok {
			b.Fatal("miss")
		}
	}
}

// Only the JWS compact alphabet is cacheable: a line break (which base64
// decoding ignores) or any other byte makes a spelling that is not.
func TestCacheable(t *testing.T) {
	for tok, want := range map[string]bool{
		"eyJhbGciOi.eyJzdWIi.sig-_09AZaz": true,
		"":                                true,
		"a.b.c\n":                         false,
		"a.b.\rc":                         false,
		"a.b.c=":                          false,
		"a.b.c+/":                         false,
		"a b.c":                           false,
		"a.b.c\x00":                       false,
	} {
		if got := Cacheable(tok); got != want {
			t.Errorf("Cacheable(%q) = %v, want %v", tok, got, want)
		}
	}
}
