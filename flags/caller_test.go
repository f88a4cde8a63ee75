package flags_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening"
	"github.com/systembuilderhub/hardening/flags"
)

// TestEvaluateContextReadsCaller: the context forms evaluate for the tenant
// of hardening.CallerFrom(ctx); without a caller no override applies.
func TestEvaluateContextReadsCaller(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := newClient(t, flags.NewMemoryStore())
	_, err := c.Toggle(ctx, "llm.streaming", true, flags.Change{By: "alice", TenantID: "acme"})
	require.NoError(t, err)

	acme := hardening.WithCaller(ctx, hardening.Caller{Subject: "u1", Tenant: "acme"})
	globex := hardening.WithCaller(ctx, hardening.Caller{Subject: "u2", Tenant: "globex"})

	assert.Equal(t, flags.Evaluation{Value: true, Source: flags.SourceOverride}, c.EvaluateContext(acme, "llm.streaming", false))
	assert.True(t, c.EnabledContext(acme, "llm.streaming", false))
	assert.Equal(t, flags.Evaluation{Value: false, Source: flags.SourceDefault}, c.EvaluateContext(globex, "llm.streaming", false))
	assert.Equal(t, flags.Evaluation{Value: false, Source: flags.SourceDefault}, c.EvaluateContext(ctx, "llm.streaming", false),
		"no caller: no tenant, so no override")
	assert.Equal(t, flags.Evaluation{Value: true, Source: flags.SourceUnknown}, c.EvaluateContext(acme, "no.such", true))

	h, err := c.Handle("llm.streaming")
	require.NoError(t, err)
	assert.Equal(t, flags.Evaluation{Value: true, Source: flags.SourceOverride}, h.EvaluateContext(acme))
	assert.True(t, h.EnabledContext(acme))
	assert.False(t, h.EnabledContext(globex))

	assert.Equal(t, c.List("acme"), c.ListContext(acme))
	assert.Equal(t, c.List(""), c.ListContext(ctx))
}

type tenantKey struct{}

// TestWithTenantFrom: an adapter replaces the caller as the source of the
// tenant (an application that keeps the tenant elsewhere in the context);
// a nil adapter is a constructor error.
func TestWithTenantFrom(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := newClient(t, flags.NewMemoryStore(), flags.WithTenantFrom(func(ctx context.Context) string {
		s, _ := ctx.Value(tenantKey{}).(string)
		return s
	}))
	_, err := c.Toggle(ctx, "llm.streaming", true, flags.Change{By: "alice", TenantID: "acme"})
	require.NoError(t, err)
	assert.True(t, c.EnabledContext(context.WithValue(ctx, tenantKey{}, "acme"), "llm.streaming", false))
	callerOnly := hardening.WithCaller(ctx, hardening.Caller{Tenant: "acme"})
	assert.False(t, c.EnabledContext(callerOnly, "llm.streaming", false), "the adapter, not the caller, decides")

	_, err = flags.New(flags.NewMemoryStore(), flags.WithTenantFrom(nil))
	assert.ErrorContains(t, err, "nil tenant function")
}

// TestEvaluateContextDoesNotAllocate: reading the caller keeps evaluation
// allocation-free.
func TestEvaluateContextDoesNotAllocate(t *testing.T) {
	ctx := context.Background()
	c := newClient(t, flags.NewMemoryStore())
	_, err := c.Toggle(ctx, "llm.streaming", true, flags.Change{By: "t", TenantID: "acme"})
	require.NoError(t, err)
	acme := hardening.WithCaller(ctx, hardening.Caller{Subject: "u", Tenant: "acme", Roles: []string{"admin"}})
	h, err := c.Handle("llm.streaming")
	require.NoError(t, err)
	for name, fn := range map[string]func(){
		"client": func() { sink = c.EnabledContext(acme, "llm.streaming", false) },
		"handle": func() { sink = h.EnabledContext(acme) },
		"none":   func() { sink = c.EnabledContext(ctx, "llm.streaming", false) },
	} {
		if n := testing.AllocsPerRun(100, fn); n != 0 {
			t.Errorf("%s: %v allocs per evaluation", name, n)
		}
	}
}

// TestToggleByDefaultsToTheCaller: a change without By is made by the
// context's caller; without a caller it is refused.
func TestToggleByDefaultsToTheCaller(t *testing.T) {
	c, err := flags.New(flags.NewMemoryStore(), flags.WithFlags(flags.Flag{Name: "beta"}))
	require.NoError(t, err)
	ctx := hardening.WithCaller(t.Context(), hardening.Caller{Subject: "ops-1", Tenant: "acme"})
	rec, err := c.Toggle(ctx, "beta", true, flags.Change{TenantID: "acme", Reason: "pilot"})
	require.NoError(t, err)
	assert.Equal(t, "ops-1", rec.ChangedBy)
	_, err = c.Toggle(t.Context(), "beta", false, flags.Change{Reason: "no caller"})
	require.ErrorIs(t, err, flags.ErrInvalidChange)
}
