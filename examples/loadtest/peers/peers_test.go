package main

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/redis/go-redis/v9"
	"github.com/sethvargo/go-limiter/memorystore"

	"github.com/systembuilderhub/hardening/tenancy"
)

// testRedis is REDIS_URL when set, else an in-process miniredis.
func testRedis(t testing.TB) redis.UniversalClient {
	t.Helper()
	rdb, _, closeFn, err := openRedis(os.Getenv("REDIS_URL"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(closeFn)
	return rdb
}

func testPairs(t testing.TB) []pair {
	t.Helper()
	rdb := testRedis(t)
	prefix := "loadtest-peers-test:" + t.Name() + ":"
	pairs, closeFn, err := newPairs(context.Background(), rdb, prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeFn(); cleanRedis(rdb, prefix) })
	return pairs
}

// TestPairsAdmitAndVerify checks that both sides of every pair do their
// job (the rate admits, the token verifies) so that no benchmark times an
// error path, and that every pair the documentation names is there.
func TestPairsAdmitAndVerify(t *testing.T) {
	pairs := testPairs(t)
	var names []string
	for _, p := range pairs {
		names = append(names, p.Name)
		for side, o := range map[string]op{"kit": p.kit, "peer": p.peer} {
			for i := range 20 {
				if err := o(context.Background()); err != nil {
					t.Fatalf("%s %s call %d: %v", p.Name, side, i, err)
				}
			}
		}
	}
	want := []string{"rate-memory", "rate-memory-store", "rate-redis", "rate-redis-store", "token-preview", "token-bearer"}
	if len(names) != len(want) {
		t.Fatalf("pairs %v, want %v", names, want)
	}
	for i := range want {
		if names[i] != want[i] {
			t.Fatalf("pairs %v, want %v", names, want)
		}
	}
}

// TestPeerTokenRejectsTampering makes sure the golang-jwt baseline really
// verifies the signature: a token signed with another key fails.
func TestPeerTokenRejectsTampering(t *testing.T) {
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "u", "exp": time.Now().Add(time.Hour).Unix()}).
		SignedString([]byte("one-secret-of-sufficient-length"))
	if err != nil {
		t.Fatal(err)
	}
	if err := jwtParseOp(tok, []byte("one-secret-of-sufficient-length"))(context.Background()); err != nil {
		t.Fatalf("the right key: %v", err)
	}
	if err := jwtParseOp(tok, []byte("another-secret-of-sufficient-length"))(context.Background()); err == nil {
		t.Fatal("jwt.Parse accepted a token signed with another key")
	}
}

// TestRateRefusalIsAnError checks that a refused decision is reported on
// both sides, so a rate pair never times refusals as admissions.
func TestRateRefusalIsAnError(t *testing.T) {
	ctx := context.Background()
	gl, err := memorystore.New(&memorystore.Config{Tokens: 1, Interval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer gl.Close(ctx)
	q, err := tenancy.NewQuotas(tenancy.NewMemoryStore(), tenancy.Rate("peer", 1, time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	for name, o := range map[string]op{"go-limiter": takeOp(gl, "k"), "kit": allowOp(q)} {
		if err := o(ctx); err != nil {
			t.Fatalf("%s: first call: %v", name, err)
		}
		if err := o(ctx); err == nil {
			t.Fatalf("%s: second call within the hour was not refused", name)
		}
	}
}

// TestRunSmoke runs the whole program briefly and checks its table.
func TestRunSmoke(t *testing.T) {
	res, err := run(context.Background(), config{Redis: os.Getenv("REDIS_URL"), Rounds: 1, Duration: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Rows) != 6 {
		t.Fatalf("%d rows, want 6", len(res.Rows))
	}
	for _, r := range res.Rows {
		if r.Ratio <= 0 || r.KitSide.Ops == 0 || r.PeerSide.Ops == 0 {
			t.Errorf("%s: empty measurement %+v", r.Name, r)
		}
	}
}

// BenchmarkPeers runs every pair's two sides as Go benchmarks:
//
//	go test -run '^$' -bench . -benchmem ./...
func BenchmarkPeers(b *testing.B) {
	for _, p := range testPairs(b) {
		for _, side := range []struct {
			name string
			o    op
		}{{"kit", p.kit}, {"peer", p.peer}} {
			o := side.o
			b.Run(p.Name+"/"+side.name, func(b *testing.B) {
				b.ReportAllocs()
				ctx := context.Background()
				for b.Loop() {
					if err := o(ctx); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
