// Package storetest is the conformance suite for flags.Store: every
// implementation (memory, SQLite, Redis) runs the same tests, including the
// concurrency and two-replica ones. A new backend is correct when it passes.
package storetest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening/flags"
)

// Run runs the conformance suite. newStore returns an empty store on a
// fresh backend for each subtest.
func Run(t *testing.T, newStore func(t *testing.T) flags.Store) {
	t.Run("Empty", func(t *testing.T) { testEmpty(t, newStore(t)) })
	t.Run("ToggleRecords", func(t *testing.T) { testToggleRecords(t, newStore(t)) })
	t.Run("TenantOverride", func(t *testing.T) { testTenantOverride(t, newStore(t)) })
	t.Run("AuditFilters", func(t *testing.T) { testAuditFilters(t, newStore(t)) })
	t.Run("AuditPagination", func(t *testing.T) { testAuditPagination(t, newStore(t)) })
	t.Run("AuditBadCursor", func(t *testing.T) { testAuditBadCursor(t, newStore(t)) })
	t.Run("ConcurrentTogglesChain", func(t *testing.T) { testConcurrentToggles(t, newStore(t)) })
}

// RunReplicas runs the two-replica tests: newReplicas returns two stores
// on one backend (two connection pools on one SQLite file, two clients on
// one Redis), standing for two replicas of a service.
func RunReplicas(t *testing.T, newReplicas func(t *testing.T) (a, b flags.Store)) {
	t.Run("ToggleSeenByOtherReplica", func(t *testing.T) {
		a, b := newReplicas(t)
		testReplicas(t, a, b)
	})
}

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 6_000_000, time.UTC)

func req(flag, tenant string, v bool, by string, at time.Time) flags.ToggleRequest {
	return flags.ToggleRequest{Flag: flag, TenantID: tenant, Value: v, By: by, Reason: "because " + by, At: at}
}

func ptr(b bool) *bool { return &b }

func valuesOf(t *testing.T, s flags.Store) map[string]bool {
	t.Helper()
	st, err := s.Load(context.Background())
	require.NoError(t, err)
	out := map[string]bool{}
	for _, v := range st.Values {
		out[v.Flag+"|"+v.TenantID] = v.Value
	}
	return out
}

func testEmpty(t *testing.T, s flags.Store) {
	ctx := context.Background()
	st, err := s.Load(ctx)
	require.NoError(t, err)
	assert.Empty(t, st.Values)
	v, err := s.Version(ctx)
	require.NoError(t, err)
	assert.Equal(t, st.Version, v)
	page, err := s.Audit(ctx, flags.AuditQuery{})
	require.NoError(t, err)
	assert.Empty(t, page.Entries)
	assert.Empty(t, page.NextCursor)
}

func testToggleRecords(t *testing.T, s flags.Store) {
	ctx := context.Background()
	v0, err := s.Version(ctx)
	require.NoError(t, err)

	r1, err := s.Toggle(ctx, flags.ToggleRequest{Flag: "llm.streaming", Value: true, By: "alice", Reason: "rollout — étape 1", At: t0})
	require.NoError(t, err)
	assert.Positive(t, r1.ID)
	assert.Equal(t, "llm.streaming", r1.Flag)
	assert.Empty(t, r1.TenantID)
	assert.Nil(t, r1.OldValue, "nothing was set before")
	assert.True(t, r1.NewValue)
	assert.Equal(t, "alice", r1.ChangedBy)
	assert.Equal(t, "rollout — étape 1", r1.Reason)
	assert.True(t, t0.Equal(r1.ChangedAt), "changed_at %v", r1.ChangedAt)

	v1, err := s.Version(ctx)
	require.NoError(t, err)
	assert.Greater(t, v1, v0, "a toggle changes the version")
	assert.Equal(t, map[string]bool{"llm.streaming|": true}, valuesOf(t, s))

	// Toggling to the current value is recorded, old = new.
	r2, err := s.Toggle(ctx, req("llm.streaming", "", true, "bob", t0.Add(time.Second)))
	require.NoError(t, err)
	assert.Greater(t, r2.ID, r1.ID)
	assert.Equal(t, ptr(true), r2.OldValue)
	assert.True(t, r2.NewValue)
	v2, err := s.Version(ctx)
	require.NoError(t, err)
	assert.Greater(t, v2, v1)

	r3, err := s.Toggle(ctx, req("llm.streaming", "", false, "carol", t0.Add(2*time.Second)))
	require.NoError(t, err)
	assert.Equal(t, ptr(true), r3.OldValue)
	assert.False(t, r3.NewValue)
	assert.Equal(t, map[string]bool{"llm.streaming|": false}, valuesOf(t, s))

	page, err := s.Audit(ctx, flags.AuditQuery{})
	require.NoError(t, err)
	require.Len(t, page.Entries, 3)
	assert.Equal(t, []flags.Record{r3, r2, r1}, normalize(page.Entries), "newest first, as returned by Toggle")

	st, err := s.Load(ctx)
	require.NoError(t, err)
	v3, err := s.Version(ctx)
	require.NoError(t, err)
	assert.Equal(t, v3, st.Version)
}

// normalize makes records comparable with assert.Equal (time locations).
func normalize(rs []flags.Record) []flags.Record {
	out := slices.Clone(rs)
	for i := range out {
		out[i].ChangedAt = out[i].ChangedAt.UTC()
	}
	return out
}

func testTenantOverride(t *testing.T, s flags.Store) {
	ctx := context.Background()
	_, err := s.Toggle(ctx, req("preview.device-presets", "", false, "root", t0))
	require.NoError(t, err)
	r, err := s.Toggle(ctx, req("preview.device-presets", "acme", true, "root", t0))
	require.NoError(t, err)
	assert.Nil(t, r.OldValue, "the tenant had no override")
	assert.Equal(t, "acme", r.TenantID)
	_, err = s.Toggle(ctx, req("preview.device-presets", "globex", false, "root", t0))
	require.NoError(t, err)
	_, err = s.Toggle(ctx, req("other", "acme", true, "root", t0))
	require.NoError(t, err)
	assert.Equal(t, map[string]bool{
		"preview.device-presets|":       false,
		"preview.device-presets|acme":   true,
		"preview.device-presets|globex": false,
		"other|acme":                    true,
	}, valuesOf(t, s))
	r, err = s.Toggle(ctx, req("preview.device-presets", "acme", false, "root", t0))
	require.NoError(t, err)
	assert.Equal(t, ptr(true), r.OldValue)
}

func testAuditFilters(t *testing.T, s flags.Store) {
	ctx := context.Background()
	type in struct {
		flag, tenant, by string
		at               time.Duration
	}
	ins := []in{
		{"a", "", "alice", 0},
		{"a", "acme", "alice", time.Minute},
		{"b", "acme", "bob", 2 * time.Minute},
		{"b", "", "bob", 3 * time.Minute},
		{"a", "globex", "bob", 4 * time.Minute},
	}
	ids := make([]int64, len(ins))
	for i, x := range ins {
		r, err := s.Toggle(ctx, req(x.flag, x.tenant, i%2 == 0, x.by, t0.Add(x.at)))
		require.NoError(t, err)
		ids[i] = r.ID
	}
	for _, tc := range []struct {
		name string
		q    flags.AuditQuery
		want []int // indexes into ins, newest first
	}{
		{"all", flags.AuditQuery{}, []int{4, 3, 2, 1, 0}},
		{"flag", flags.AuditQuery{Flag: "a"}, []int{4, 1, 0}},
		{"tenant", flags.AuditQuery{TenantID: "acme"}, []int{2, 1}},
		{"actor", flags.AuditQuery{ChangedBy: "bob"}, []int{4, 3, 2}},
		{"flag+tenant", flags.AuditQuery{Flag: "b", TenantID: "acme"}, []int{2}},
		{"since", flags.AuditQuery{Since: t0.Add(2 * time.Minute)}, []int{4, 3, 2}},
		{"until", flags.AuditQuery{Until: t0.Add(2 * time.Minute)}, []int{1, 0}},
		{"range+actor", flags.AuditQuery{Since: t0.Add(time.Minute), Until: t0.Add(4 * time.Minute), ChangedBy: "alice"}, []int{1}},
		{"none", flags.AuditQuery{Flag: "zzz"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			page, err := s.Audit(ctx, tc.q)
			require.NoError(t, err)
			var got []int64
			for _, e := range page.Entries {
				got = append(got, e.ID)
			}
			var want []int64
			for _, i := range tc.want {
				want = append(want, ids[i])
			}
			assert.Equal(t, want, got)
			assert.Empty(t, page.NextCursor)
		})
	}
}

func testAuditPagination(t *testing.T, s flags.Store) {
	ctx := context.Background()
	const n = 23
	for i := range n {
		tenant := ""
		if i%3 == 0 {
			tenant = "acme"
		}
		_, err := s.Toggle(ctx, req("paged", tenant, i%2 == 0, fmt.Sprint("u", i), t0.Add(time.Duration(i)*time.Second)))
		require.NoError(t, err)
	}
	for _, tc := range []struct {
		q     flags.AuditQuery
		total int
	}{
		{flags.AuditQuery{Limit: 5}, n},
		{flags.AuditQuery{Limit: 1}, n},
		{flags.AuditQuery{Limit: 3, TenantID: "acme"}, 8},
		{flags.AuditQuery{Limit: 8, TenantID: "acme"}, 8},
	} {
		t.Run(fmt.Sprintf("limit%d_tenant%q", tc.q.Limit, tc.q.TenantID), func(t *testing.T) {
			var all []flags.Record
			q := tc.q
			for pages := 0; ; pages++ {
				require.Less(t, pages, n+2, "pagination does not end")
				page, err := s.Audit(ctx, q)
				require.NoError(t, err)
				require.LessOrEqual(t, len(page.Entries), q.Limit)
				all = append(all, page.Entries...)
				if page.NextCursor == "" {
					break
				}
				require.Len(t, page.Entries, q.Limit, "only the last page may be short")
				q.Cursor = page.NextCursor
			}
			require.Len(t, all, tc.total)
			for i := 1; i < len(all); i++ {
				assert.Less(t, all[i].ID, all[i-1].ID, "newest first, no duplicates")
			}
		})
	}
	page, err := s.Audit(ctx, flags.AuditQuery{})
	require.NoError(t, err)
	assert.Len(t, page.Entries, n, "the default limit (50) covers 23 records")
}

func testAuditBadCursor(t *testing.T, s flags.Store) {
	ctx := context.Background()
	for _, c := range []string{"x", "a", "a-1", "azzzzzzzzzzzzzzzzzzz", "12"} {
		_, err := s.Audit(ctx, flags.AuditQuery{Cursor: c})
		assert.ErrorIs(t, err, flags.ErrInvalidCursor, c)
	}
	_, err := s.Audit(ctx, flags.AuditQuery{Limit: flags.MaxAuditLimit + 1})
	assert.ErrorIs(t, err, flags.ErrInvalidChange)
}

// testConcurrentToggles: 50 goroutines toggle one flag; the audit must hold
// exactly 50 records whose old/new values chain without gaps.
func testConcurrentToggles(t *testing.T, s flags.Store) {
	ctx := context.Background()
	const n = 50
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			_, err := s.Toggle(ctx, req("hot", "", i%2 == 0, fmt.Sprint("g", i), t0))
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	recs := CheckChain(t, s, "hot", n)
	actors := map[string]bool{}
	for _, r := range recs {
		actors[r.ChangedBy] = true
	}
	assert.Len(t, actors, n, "every toggle recorded once")
}

// CheckChain asserts that the audit of flag holds exactly n records whose
// old/new values chain without gaps (each record's old value is the
// previous record's new value, the first has none) and that the stored
// global value is the last record's; it returns the records oldest first.
// Cross-process tests use it after several processes toggled one flag.
func CheckChain(t *testing.T, s flags.Store, flag string, n int) []flags.Record {
	t.Helper()
	ctx := context.Background()
	page, err := s.Audit(ctx, flags.AuditQuery{Flag: flag, Limit: flags.MaxAuditLimit})
	require.NoError(t, err)
	require.Len(t, page.Entries, n)
	recs := slices.Clone(page.Entries)
	slices.Reverse(recs) // oldest first
	assert.Nil(t, recs[0].OldValue, "the first record has no old value")
	for i, r := range recs {
		if i == 0 {
			continue
		}
		require.NotNil(t, r.OldValue, "record %d", i)
		assert.Equal(t, recs[i-1].NewValue, *r.OldValue, "record %d old value chains to record %d new value", i, i-1)
	}
	st, err := s.Load(ctx)
	require.NoError(t, err)
	for _, v := range st.Values {
		if v.Flag == flag && v.TenantID == "" {
			assert.Equal(t, recs[n-1].NewValue, v.Value, "state equals the last record")
		}
	}
	return recs
}

// testReplicas: two flag clients on one backend; a toggle on one is seen by
// the other's evaluation within 1s (the bound).
func testReplicas(t *testing.T, sa, sb flags.Store) {
	ctx := context.Background()
	def := flags.Flag{Name: "llm.streaming", Description: "stream LLM answers"}
	a, err := flags.New(sa, flags.WithFlags(def))
	require.NoError(t, err)
	b, err := flags.New(sb, flags.WithFlags(def))
	require.NoError(t, err)
	require.NoError(t, a.Start(ctx))
	require.NoError(t, b.Start(ctx))
	t.Cleanup(func() {
		assert.NoError(t, a.Close(context.Background()))
		assert.NoError(t, b.Close(context.Background()))
	})
	updates := make(chan []string, 16)
	b.OnUpdate(func(names []string) { updates <- names })

	for i, step := range []struct {
		tenant string
		value  bool
	}{{"", true}, {"acme", false}, {"", false}} {
		start := time.Now()
		_, err := a.Toggle(ctx, "llm.streaming", step.value, flags.Change{By: "ops", TenantID: step.tenant})
		require.NoError(t, err)
		assert.Equal(t, step.value, a.Enabled("llm.streaming", step.tenant, !step.value), "read your writes")
		require.Eventually(t, func() bool {
			return b.Enabled("llm.streaming", step.tenant, !step.value) == step.value
		}, time.Second, 10*time.Millisecond, "step %d: replica b did not see the toggle within 1s", i)
		t.Logf("step %d: seen by the other replica after %v", i, time.Since(start))
		select {
		case names := <-updates:
			assert.Equal(t, []string{"llm.streaming"}, names)
		case <-time.After(time.Second):
			t.Fatalf("step %d: no OnUpdate on replica b", i)
		}
	}
	ev := b.Evaluate("llm.streaming", "acme", true)
	assert.Equal(t, flags.Evaluation{Value: false, Source: flags.SourceOverride}, ev)
}
