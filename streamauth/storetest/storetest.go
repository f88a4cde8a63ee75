// Package storetest is the conformance suite for streamauth.RevocationStore:
// the memory, SQLite and Redis stores run the same tests, including the
// concurrency, two-replica and restart ones. A new backend is correct when
// it passes.
package storetest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening/streamauth"
)

// Run runs the conformance suite. newStore returns an empty store on a
// fresh backend for each subtest.
func Run(t *testing.T, newStore func(t *testing.T) streamauth.RevocationStore) {
	t.Run("Empty", func(t *testing.T) { testEmpty(t, newStore(t)) })
	t.Run("AddLoad", func(t *testing.T) { testAddLoad(t, newStore(t)) })
	t.Run("KeepsLaterTimes", func(t *testing.T) { testMerge(t, newStore(t)) })
	t.Run("Expiry", func(t *testing.T) { testExpiry(t, newStore(t)) })
	t.Run("Invalid", func(t *testing.T) { testInvalid(t, newStore(t)) })
	t.Run("ConcurrentAdds", func(t *testing.T) { testConcurrent(t, newStore(t)) })
}

// RunReplicas runs the tests that need two stores on one backend (two
// connection pools on one SQLite file, two clients on one Redis), standing
// for two replicas or for one replica before and after a restart.
func RunReplicas(t *testing.T, newReplicas func(t *testing.T) (a, b streamauth.RevocationStore)) {
	t.Run("SeenByOtherReplica", func(t *testing.T) {
		a, b := newReplicas(t)
		testReplicas(t, a, b)
	})
	t.Run("RevocationSurvivesRestart", func(t *testing.T) {
		a, b := newReplicas(t)
		testRestart(t, a, b)
	})
}

// t0 is a time at millisecond precision, which every store keeps.
var t0 = time.Date(2026, 1, 2, 3, 4, 5, 6_000_000, time.UTC)

func rev(user, tenant string, at time.Time, ttl time.Duration) streamauth.Revocation {
	return streamauth.Revocation{Subject: user, Tenant: tenant, RevokedAt: at, ExpiresAt: at.Add(ttl)}
}

// key identifies a revocation in results; times are compared at
// millisecond precision in UTC.
func key(r streamauth.Revocation) string {
	return fmt.Sprintf("%q|%q|%d|%d", r.Subject, r.Tenant, r.RevokedAt.UnixMilli(), r.ExpiresAt.UnixMilli())
}

func load(t *testing.T, s streamauth.RevocationStore, now time.Time) []string {
	t.Helper()
	got, err := s.Load(context.Background(), now)
	require.NoError(t, err)
	out := make([]string, 0, len(got))
	for _, r := range got {
		out = append(out, key(r))
	}
	slices.Sort(out)
	return out
}

func keys(rs ...streamauth.Revocation) []string {
	out := make([]string, 0, len(rs))
	for _, r := range rs {
		out = append(out, key(r))
	}
	slices.Sort(out)
	return out
}

func testEmpty(t *testing.T, s streamauth.RevocationStore) {
	assert.Empty(t, load(t, s, t0))
}

func testAddLoad(t *testing.T, s streamauth.RevocationStore) {
	ctx := context.Background()
	all := []streamauth.Revocation{
		rev("alice", "", t0, time.Hour),
		rev("", "acme", t0.Add(time.Second), time.Hour),
		rev("alice", "acme", t0.Add(2*time.Second), 2*time.Hour),
		// Separators and non-ASCII must not make two keys collide.
		rev("a|b", "", t0, time.Hour),
		rev("a", "|b", t0, time.Hour),
		rev("a:b", "c", t0, time.Hour),
		rev("a", "b:c", t0, time.Hour),
		rev("ünï cödé", "テナント", t0, time.Hour),
	}
	for _, r := range all {
		require.NoError(t, s.Add(ctx, r))
	}
	assert.Equal(t, keys(all...), load(t, s, t0))
	got, err := s.Load(ctx, t0)
	require.NoError(t, err)
	for _, r := range got {
		assert.True(t, r.RevokedAt.Equal(time.UnixMilli(r.RevokedAt.UnixMilli())), "RevokedAt at millisecond precision")
	}
}

func testMerge(t *testing.T, s streamauth.RevocationStore) {
	ctx := context.Background()
	// A later revocation with a shorter memory keeps the later RevokedAt
	// and the later ExpiresAt; so does an earlier one replayed late.
	require.NoError(t, s.Add(ctx, rev("alice", "", t0, 24*time.Hour)))
	require.NoError(t, s.Add(ctx, rev("alice", "", t0.Add(time.Hour), time.Hour)))
	require.NoError(t, s.Add(ctx, rev("alice", "", t0.Add(-time.Hour), time.Hour)))
	want := streamauth.Revocation{Subject: "alice", RevokedAt: t0.Add(time.Hour), ExpiresAt: t0.Add(24 * time.Hour)}
	assert.Equal(t, keys(want), load(t, s, t0))
}

func testExpiry(t *testing.T, s streamauth.RevocationStore) {
	ctx := context.Background()
	short := rev("alice", "", t0, time.Minute)
	long := rev("bob", "", t0, time.Hour)
	require.NoError(t, s.Add(ctx, short))
	require.NoError(t, s.Add(ctx, long))
	assert.Equal(t, keys(short, long), load(t, s, t0.Add(time.Minute-time.Millisecond)))
	assert.Equal(t, keys(long), load(t, s, t0.Add(time.Minute)), "a revocation is gone at its ExpiresAt")
	assert.Empty(t, load(t, s, t0.Add(time.Hour)))
}

func testInvalid(t *testing.T, s streamauth.RevocationStore) {
	ctx := context.Background()
	assert.ErrorIs(t, s.Add(ctx, rev("", "", t0, time.Hour)), streamauth.ErrEmptySelector)
	assert.Error(t, s.Add(ctx, rev("alice", "", t0, 0)))
	assert.Error(t, s.Add(ctx, rev("alice", "", t0, -time.Hour)))
	assert.Empty(t, load(t, s, t0))
}

// testConcurrent: goroutines add revocations of one user with scattered
// times, and of their own users, at once: the shared one ends with the
// latest RevokedAt and ExpiresAt, none is lost.
func testConcurrent(t *testing.T, s streamauth.RevocationStore) {
	ctx := context.Background()
	const workers, per = 8, 10
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range per {
				// Spread so that no single worker holds both maxima.
				at := t0.Add(time.Duration((i*workers+w)%37) * time.Second)
				ttl := time.Duration(1+(i*7+w*3)%41) * time.Minute
				assert.NoError(t, s.Add(ctx, rev("shared", "", at, ttl)))
				assert.NoError(t, s.Add(ctx, rev(fmt.Sprintf("u%d-%d", w, i), "acme", t0, time.Hour)))
			}
		})
	}
	wg.Wait()
	var maxAt, maxExp time.Time
	for w := range workers {
		for i := range per {
			at := t0.Add(time.Duration((i*workers+w)%37) * time.Second)
			exp := at.Add(time.Duration(1+(i*7+w*3)%41) * time.Minute)
			if at.After(maxAt) {
				maxAt = at
			}
			if exp.After(maxExp) {
				maxExp = exp
			}
		}
	}
	got := load(t, s, t0)
	require.Len(t, got, workers*per+1)
	want := key(streamauth.Revocation{Subject: "shared", RevokedAt: maxAt, ExpiresAt: maxExp})
	assert.True(t, slices.Contains(got, want), "want %s among %s", want, strings.Join(got, ", "))
}

func testReplicas(t *testing.T, a, b streamauth.RevocationStore) {
	ctx := context.Background()
	r := rev("alice", "acme", t0, time.Hour)
	require.NoError(t, a.Add(ctx, r))
	assert.Equal(t, keys(r), load(t, b, t0))
	r2 := rev("", "globex", t0, time.Hour)
	require.NoError(t, b.Add(ctx, r2))
	assert.Equal(t, keys(r, r2), load(t, a, t0))
}
