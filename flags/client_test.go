package flags_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening/flags"
)

var (
	presets   = flags.Flag{Name: "preview.device-presets", Default: true, Description: "device presets in previews"}
	streaming = flags.Flag{Name: "llm.streaming", Description: "stream LLM answers"}
)

func newClient(t *testing.T, s flags.Store, opts ...flags.Option) *flags.Client {
	t.Helper()
	c, err := flags.New(s, append([]flags.Option{flags.WithFlags(presets, streaming)}, opts...)...)
	require.NoError(t, err)
	require.NoError(t, c.Start(context.Background()))
	t.Cleanup(func() { assert.NoError(t, c.Close(context.Background())) })
	return c
}

func TestValidateName(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"a", true},
		{"preview.device-presets", true},
		{"llm_streaming.v2", true},
		{strings.Repeat("a", 100), true},
		{strings.Repeat("a", 101), false},
		{"", false},
		{"Upper", false},
		{"has space", false},
		{"slash/name", false},
		{"pipe|name", false},
		{"ünicode", false},
		{"tab\t", false},
	} {
		err := flags.ValidateName(tc.name)
		if tc.ok {
			assert.NoError(t, err, tc.name)
		} else {
			assert.ErrorIs(t, err, flags.ErrInvalidName, tc.name)
		}
	}
}

func TestRegister(t *testing.T) {
	t.Parallel()
	c, err := flags.New(flags.NewMemoryStore(), flags.WithFlags(presets))
	require.NoError(t, err)
	assert.ErrorIs(t, c.Register(presets), flags.ErrDuplicateFlag)
	assert.ErrorIs(t, c.Register(flags.Flag{Name: "x"}, flags.Flag{Name: "x"}), flags.ErrDuplicateFlag)
	assert.ErrorIs(t, c.Register(flags.Flag{Name: "ok"}, flags.Flag{Name: "Bad"}), flags.ErrInvalidName)
	_, ok := c.Lookup("ok")
	assert.False(t, ok, "a failed Register registers nothing")
	require.NoError(t, c.Register(flags.Flag{Name: "late", Default: true}))
	assert.Equal(t, flags.Evaluation{Value: true, Source: flags.SourceDefault}, c.Evaluate("late", "", false))
	_, err = flags.New(flags.NewMemoryStore(), flags.WithFlags(flags.Flag{Name: "BAD"}))
	assert.ErrorIs(t, err, flags.ErrInvalidName)
	_, err = flags.New(nil)
	assert.Error(t, err)
	_, err = flags.New(flags.NewMemoryStore(), flags.WithPollInterval(0))
	assert.Error(t, err)
	_, err = flags.New(flags.NewMemoryStore(), flags.WithPollInterval(time.Second), flags.WithMaxStaleness(time.Millisecond))
	assert.Error(t, err)
}

func TestEvaluationPrecedence(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := newClient(t, flags.NewMemoryStore())
	by := flags.Change{By: "admin"}

	// Registered default.
	assert.Equal(t, flags.Evaluation{Value: true, Source: flags.SourceDefault}, c.Evaluate("preview.device-presets", "acme", false))
	assert.Equal(t, flags.Evaluation{Value: false, Source: flags.SourceDefault}, c.Evaluate("llm.streaming", "acme", true))

	// Global beats the default.
	_, err := c.Toggle(ctx, "preview.device-presets", false, by)
	require.NoError(t, err)
	assert.Equal(t, flags.Evaluation{Value: false, Source: flags.SourceGlobal}, c.Evaluate("preview.device-presets", "acme", true))

	// The tenant's override beats the global value, for that tenant only.
	_, err = c.Toggle(ctx, "preview.device-presets", true, flags.Change{By: "admin", TenantID: "acme"})
	require.NoError(t, err)
	assert.Equal(t, flags.Evaluation{Value: true, Source: flags.SourceOverride}, c.Evaluate("preview.device-presets", "acme", false))
	assert.Equal(t, flags.Evaluation{Value: false, Source: flags.SourceGlobal}, c.Evaluate("preview.device-presets", "globex", true))
	assert.Equal(t, flags.Evaluation{Value: false, Source: flags.SourceGlobal}, c.Evaluate("preview.device-presets", "", true))

	// An unknown flag: the caller's default, counted, never an error.
	assert.Equal(t, uint64(0), c.Unknown())
	assert.Equal(t, flags.Evaluation{Value: true, Source: flags.SourceUnknown}, c.Evaluate("nope", "acme", true))
	assert.False(t, c.Enabled("nope", "", false))
	assert.Equal(t, uint64(2), c.Unknown())

	list := c.List("acme")
	require.Len(t, list, 2)
	assert.Equal(t, "llm.streaming", list[0].Name)
	assert.Equal(t, flags.SourceDefault, list[0].Source)
	assert.Equal(t, "preview.device-presets", list[1].Name)
	assert.True(t, list[1].Value)
	assert.Equal(t, flags.SourceOverride, list[1].Source)
}

func TestToggleErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := newClient(t, flags.NewMemoryStore())
	_, err := c.Toggle(ctx, "not.registered", true, flags.Change{By: "a"})
	assert.ErrorIs(t, err, flags.ErrUnknownFlag)
	_, err = c.Toggle(ctx, "Bad Name", true, flags.Change{By: "a"})
	assert.ErrorIs(t, err, flags.ErrInvalidName)
	for _, ch := range []flags.Change{
		{},
		{By: "a\nb"},
		{By: strings.Repeat("x", flags.MaxActorLen+1)},
		{By: "a", TenantID: "t\x00"},
		{By: "a", TenantID: strings.Repeat("t", flags.MaxTenantIDLen+1)},
		{By: "a", Reason: strings.Repeat("r", flags.MaxReasonLen+1)},
		{By: "a", Reason: "\xff"},
	} {
		_, err = c.Toggle(ctx, "llm.streaming", true, ch)
		assert.ErrorIs(t, err, flags.ErrInvalidChange, "%+v", ch)
	}
	page, err := c.Audit(ctx, flags.AuditQuery{})
	require.NoError(t, err)
	assert.Empty(t, page.Entries, "rejected toggles leave no record")
	_, err = c.Audit(ctx, flags.AuditQuery{Flag: "BAD"})
	assert.ErrorIs(t, err, flags.ErrInvalidName)
	_, err = c.Audit(ctx, flags.AuditQuery{Cursor: "nope"})
	assert.ErrorIs(t, err, flags.ErrInvalidCursor)
}

func TestToggleRecordsAndHooks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := time.Date(2026, 3, 4, 5, 6, 7, 891_234_567, time.UTC)
	reg := prometheus.NewPedanticRegistry()
	c := newClient(t, flags.NewMemoryStore(), flags.WithClock(func() time.Time { return now }), flags.WithRegisterer(reg))

	var got []flags.Record
	c.OnChange(func(r flags.Record) { panic("a broken hook must not break toggles") })
	remove := c.OnChange(func(r flags.Record) { got = append(got, r) })
	var updates [][]string
	c.OnUpdate(func(names []string) { updates = append(updates, names) })

	r1, err := c.Toggle(ctx, "llm.streaming", true, flags.Change{By: "alice", TenantID: "acme", Reason: "beta"})
	require.NoError(t, err)
	assert.Equal(t, now.Truncate(time.Millisecond), r1.ChangedAt)
	assert.Nil(t, r1.OldValue)
	r2, err := c.Toggle(ctx, "llm.streaming", true, flags.Change{By: "bob", TenantID: "acme"})
	require.NoError(t, err)
	require.NotNil(t, r2.OldValue)
	assert.True(t, *r2.OldValue, "a toggle to the current value records old = new")
	assert.Equal(t, []flags.Record{r1, r2}, got)
	assert.Equal(t, [][]string{{"llm.streaming"}}, updates, "the no-op toggle changes no cached value")

	remove()
	_, err = c.Toggle(ctx, "preview.device-presets", false, flags.Change{By: "carol"})
	require.NoError(t, err)
	assert.Len(t, got, 2, "removed hook is not called")

	c.Evaluate("llm.streaming", "acme", false)
	c.Evaluate("llm.streaming", "globex", false)
	c.Evaluate("preview.device-presets", "", true)
	c.Evaluate("unknown", "", true)
	assert.Equal(t, 2.0, counterValue(t, reg, "hardening_flags_changes_total", "flag", "llm.streaming"))
	assert.Equal(t, 1.0, counterValue(t, reg, "hardening_flags_evaluations_total", "result", "override"))
	assert.Equal(t, 1.0, counterValue(t, reg, "hardening_flags_evaluations_total", "result", "default"))
	assert.Equal(t, 1.0, counterValue(t, reg, "hardening_flags_evaluations_total", "result", "global"))
	assert.Equal(t, 1.0, counterValue(t, reg, "hardening_flags_evaluations_total", "result", "unknown"))
	assert.Equal(t, 1.0, counterValue(t, reg, "hardening_flags_unknown_total", "", ""))

	// A second client on the same registry shares the collectors.
	_, err = flags.New(flags.NewMemoryStore(), flags.WithRegisterer(reg))
	require.NoError(t, err)
}

// counterValue returns the value of the series name{label=value} in reg
// (label empty: the unlabelled series).
func counterValue(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if label == "" && len(m.GetLabel()) == 0 {
				return m.GetCounter().GetValue()
			}
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label && lp.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no series %s{%s=%q}", name, label, value)
	return 0
}

// flakyStore fails every call while down is set.
type flakyStore struct {
	flags.Store
	down atomic.Bool
}

var errDown = errors.New("store down")

func (s *flakyStore) Version(ctx context.Context) (int64, error) {
	if s.down.Load() {
		return 0, errDown
	}
	return s.Store.Version(ctx)
}

func (s *flakyStore) Load(ctx context.Context) (flags.State, error) {
	if s.down.Load() {
		return flags.State{}, errDown
	}
	return s.Store.Load(ctx)
}

// TestStalenessBound: while the store is unreachable the cache serves its
// values up to the maximum staleness, then the registered defaults, and
// recovers when the store answers again.
func TestStalenessBound(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var mu sync.Mutex
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }

	s := &flakyStore{Store: flags.NewMemoryStore()}
	c, err := flags.New(s, flags.WithFlags(presets), flags.WithClock(clock),
		flags.WithPollInterval(10*time.Second), flags.WithMaxStaleness(10*time.Second))
	require.NoError(t, err)
	var updates [][]string
	c.OnUpdate(func(n []string) { updates = append(updates, n) })

	s.down.Store(true)
	assert.Error(t, c.Start(ctx), "Start fails when the store cannot be read")
	s.down.Store(false)
	require.NoError(t, c.Start(ctx))
	defer c.Close(ctx)
	_, err = c.Toggle(ctx, "preview.device-presets", false, flags.Change{By: "ops"})
	require.NoError(t, err)
	assert.Equal(t, flags.SourceGlobal, c.Evaluate("preview.device-presets", "", true).Source)

	s.down.Store(true)
	advance(9 * time.Second)
	assert.Error(t, c.Refresh(ctx))
	assert.Equal(t, flags.Evaluation{Value: false, Source: flags.SourceGlobal}, c.Evaluate("preview.device-presets", "", true), "within the bound")
	advance(2 * time.Second)
	assert.Error(t, c.Refresh(ctx))
	assert.Equal(t, flags.Evaluation{Value: true, Source: flags.SourceStale}, c.Evaluate("preview.device-presets", "", false), "beyond the bound: registered default")

	s.down.Store(false)
	require.NoError(t, c.Refresh(ctx))
	assert.Equal(t, flags.Evaluation{Value: false, Source: flags.SourceGlobal}, c.Evaluate("preview.device-presets", "", true))
	assert.Equal(t, [][]string{{"preview.device-presets"}, {"preview.device-presets"}, {"preview.device-presets"}}, updates)
}

func TestLifecycle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c, err := flags.New(flags.NewMemoryStore(), flags.WithFlags(presets))
	require.NoError(t, err)
	assert.True(t, c.Enabled("preview.device-presets", "", false), "before Start: registered defaults")
	require.NoError(t, c.Start(ctx))
	assert.Error(t, c.Start(ctx), "twice")
	require.NoError(t, c.Close(ctx))
	require.NoError(t, c.Close(ctx), "idempotent")
	assert.ErrorIs(t, c.Start(ctx), flags.ErrClosed)

	// Cancelling Start's context stops the loop too.
	c2, err := flags.New(flags.NewMemoryStore())
	require.NoError(t, err)
	cctx, cancel := context.WithCancel(ctx)
	require.NoError(t, c2.Start(cctx))
	cancel()
	require.NoError(t, c2.Close(ctx))
}

func TestCursorRoundTrip(t *testing.T) {
	t.Parallel()
	for _, id := range []int64{1, 35, 36, 1 << 40} {
		got, err := flags.DecodeCursor(flags.EncodeCursor(id))
		require.NoError(t, err)
		assert.Equal(t, id, got)
	}
}

func TestHandle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := newClient(t, flags.NewMemoryStore())
	_, err := c.Handle("nope")
	assert.ErrorIs(t, err, flags.ErrUnknownFlag)
	h, err := c.Handle("llm.streaming")
	require.NoError(t, err)
	assert.Equal(t, "llm.streaming", h.Name())
	assert.Equal(t, flags.Evaluation{Value: false, Source: flags.SourceDefault}, h.Evaluate("acme"))
	require.NoError(t, c.Register(flags.Flag{Name: "later"}), "registering more keeps handles valid")
	_, err = c.Toggle(ctx, "llm.streaming", true, flags.Change{By: "ops", TenantID: "acme"})
	require.NoError(t, err)
	assert.True(t, h.Enabled("acme"))
	assert.Equal(t, flags.Evaluation{Value: false, Source: flags.SourceDefault}, h.Evaluate("globex"))
	assert.Equal(t, c.Evaluate("llm.streaming", "acme", false), h.Evaluate("acme"))
}
