package openfeature_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	of "github.com/open-feature/go-sdk/openfeature"
	"github.com/open-feature/go-sdk/openfeature/isolated"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/systembuilderhub/hardening"
	"github.com/systembuilderhub/hardening/flags"
	flagsof "github.com/systembuilderhub/hardening/flags/openfeature"
	"github.com/systembuilderhub/hardening/flags/redisstore"
	"github.com/systembuilderhub/hardening/flags/sqlitestore"
	"github.com/systembuilderhub/hardening/internal/testenv"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var defs = flags.WithFlags(
	flags.Flag{Name: "llm.streaming", Description: "stream LLM answers"},
	flags.Flag{Name: "preview.device-presets", Default: true},
)

func startClient(t *testing.T, s flags.Store) *flags.Client {
	t.Helper()
	c, err := flags.New(s, defs, flags.WithPollInterval(50*time.Millisecond))
	require.NoError(t, err)
	require.NoError(t, c.Start(context.Background()))
	t.Cleanup(func() { assert.NoError(t, c.Close(context.Background())) })
	return c
}

// newOF registers a provider for c on a fresh, non-global OpenFeature API
// and returns a client of it; the API is shut down at cleanup.
func newOF(t *testing.T, c *flags.Client) *of.Client {
	t.Helper()
	p, err := flagsof.New(c)
	require.NoError(t, err)
	api := isolated.NewAPI()
	t.Cleanup(func() { assert.NoError(t, api.Shutdown(context.Background())) })
	require.NoError(t, api.SetProviderAndWait(context.Background(), p))
	return api.NewClient()
}

func TestEvaluationThroughOpenFeatureClient(t *testing.T) {
	ctx := context.Background()
	fc := startClient(t, flags.NewMemoryStore())
	ofc := newOF(t, fc)
	assert.Equal(t, of.ReadyState, ofc.State())

	_, err := fc.Toggle(ctx, "llm.streaming", false, flags.Change{By: "ops"})
	require.NoError(t, err)
	_, err = fc.Toggle(ctx, "llm.streaming", true, flags.Change{By: "ops", TenantID: "acme"})
	require.NoError(t, err)

	for _, tc := range []struct {
		name       string
		flag       string
		evalCtx    of.EvaluationContext
		def        bool
		want       bool
		reason     of.Reason
		errorCode  of.ErrorCode
		wantErr    bool
		wantSource string
	}{
		{"override by targeting key", "llm.streaming", of.NewEvaluationContext("acme", nil), false, true, of.TargetingMatchReason, "", false, "override"},
		{"override by tenant_id attribute", "llm.streaming", of.NewEvaluationContext("user-7", map[string]any{"tenant_id": "acme"}), false, true, of.TargetingMatchReason, "", false, "override"},
		{"tenant_id wins over targeting key", "llm.streaming", of.NewEvaluationContext("acme", map[string]any{"tenant_id": "globex"}), true, false, of.StaticReason, "", false, "global"},
		{"global value", "llm.streaming", of.NewEvaluationContext("globex", nil), true, false, of.StaticReason, "", false, "global"},
		{"no tenant", "llm.streaming", of.NewTargetlessEvaluationContext(nil), true, false, of.StaticReason, "", false, "global"},
		{"registered default", "preview.device-presets", of.NewEvaluationContext("acme", nil), false, true, of.DefaultReason, "", false, "default"},
		{"unknown flag", "no.such.flag", of.NewEvaluationContext("acme", nil), true, true, of.ErrorReason, of.FlagNotFoundCode, true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := ofc.BooleanValueDetails(ctx, tc.flag, tc.def, tc.evalCtx)
			if tc.wantErr {
				require.Error(t, err)
			} else {
				require.NoError(t, err)
				assert.Equal(t, tc.wantSource, d.FlagMetadata["source"])
			}
			assert.Equal(t, tc.want, d.Value)
			assert.Equal(t, tc.reason, d.Reason)
			assert.Equal(t, tc.errorCode, d.ErrorCode)
			assert.Equal(t, tc.want, ofc.Boolean(ctx, tc.flag, tc.def, tc.evalCtx))
		})
	}

	// Flags are boolean.
	s, err := ofc.StringValueDetails(ctx, "llm.streaming", "x", of.NewEvaluationContext("acme", nil))
	require.Error(t, err)
	assert.Equal(t, "x", s.Value)
	assert.Equal(t, of.TypeMismatchCode, s.ErrorCode)
	i, err := ofc.IntValueDetails(ctx, "no.such.flag", 3, of.NewEvaluationContext("acme", nil))
	require.Error(t, err)
	assert.Equal(t, int64(3), i.Value)
	assert.Equal(t, of.FlagNotFoundCode, i.ErrorCode)
	_, err = ofc.FloatValueDetails(ctx, "llm.streaming", 1.5, of.EvaluationContext{})
	require.Error(t, err)
	_, err = ofc.ObjectValueDetails(ctx, "llm.streaming", nil, of.EvaluationContext{})
	require.Error(t, err)
}

// TestChangeEventFromOtherReplica: a toggle on another replica reaches this
// replica's OpenFeature handlers as PROVIDER_CONFIGURATION_CHANGED naming
// the flag, on SQLite (version poll) and on Redis (pub/sub).
func TestChangeEventFromOtherReplica(t *testing.T) {
	for _, backend := range []struct {
		name     string
		replicas func(t *testing.T) (flags.Store, flags.Store)
	}{
		{"sqlite", func(t *testing.T) (flags.Store, flags.Store) {
			_, path := testenv.SQLiteFile(t)
			a, err := sqlitestore.New(testenv.OpenSQLite(t, path))
			require.NoError(t, err)
			b, err := sqlitestore.New(testenv.OpenSQLite(t, path))
			require.NoError(t, err)
			return a, b
		}},
		{"redis", func(t *testing.T) (flags.Store, flags.Store) {
			srv := testenv.Redis(t)
			a, err := redisstore.New(srv.Client, redisstore.WithPrefix(srv.Prefix))
			require.NoError(t, err)
			b, err := redisstore.New(srv.NewClient(t), redisstore.WithPrefix(srv.Prefix))
			require.NoError(t, err)
			return a, b
		}},
	} {
		t.Run(backend.name, func(t *testing.T) {
			ctx := context.Background()
			sa, sb := backend.replicas(t)
			here := startClient(t, sa)
			other := startClient(t, sb)
			ofc := newOF(t, here)

			events := make(chan of.EventDetails, 16)
			cb := func(d of.EventDetails) { events <- d }
			ofc.AddHandler(of.ProviderConfigChange, &cb)

			_, err := other.Toggle(ctx, "llm.streaming", true, flags.Change{By: "ops", TenantID: "acme", Reason: "beta"})
			require.NoError(t, err)
			select {
			case d := <-events:
				assert.Equal(t, []string{"llm.streaming"}, d.FlagChanges)
				assert.Equal(t, flagsof.Name, d.ProviderName)
			case <-time.After(5 * time.Second):
				t.Fatal("no PROVIDER_CONFIGURATION_CHANGED event")
			}
			d, err := ofc.BooleanValueDetails(ctx, "llm.streaming", false, of.NewEvaluationContext("acme", nil))
			require.NoError(t, err)
			assert.True(t, d.Value)
			assert.Equal(t, of.TargetingMatchReason, d.Reason)
		})
	}
}

func TestNew(t *testing.T) {
	_, err := flagsof.New(nil)
	require.Error(t, err)
	c, err := flags.New(flags.NewMemoryStore())
	require.NoError(t, err)
	_, err = flagsof.New(c, flagsof.WithTenantAttribute(""))
	require.Error(t, err)
	require.NoError(t, c.Register(flags.Flag{Name: "f"}))
	_, err = c.Toggle(context.Background(), "f", true, flags.Change{By: "ops", TenantID: "acme"})
	require.NoError(t, err)
	p, err := flagsof.New(c, flagsof.WithTenantAttribute("org"))
	require.NoError(t, err)
	assert.Equal(t, flagsof.Name, p.Metadata().Name)
	d := p.BooleanEvaluation(context.Background(), "f", false, of.FlattenedContext{"org": "acme", "tenant_id": "globex"})
	assert.True(t, d.Value)
	assert.Equal(t, of.TargetingMatchReason, d.Reason)
}

// downStore fails reads while down is set.
type downStore struct {
	flags.Store
	down atomic.Bool
}

func (s *downStore) Version(ctx context.Context) (int64, error) {
	if s.down.Load() {
		return 0, errors.New("down")
	}
	return s.Store.Version(ctx)
}

// TestStaleAndReadyEvents: past the maximum staleness the provider reports
// PROVIDER_STALE (evaluations return registered defaults), and
// PROVIDER_READY when the store answers again.
func TestStaleAndReadyEvents(t *testing.T) {
	ctx := context.Background()
	var mu sync.Mutex
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	s := &downStore{Store: flags.NewMemoryStore()}
	fc, err := flags.New(s, defs, flags.WithClock(clock), flags.WithPollInterval(time.Hour), flags.WithMaxStaleness(time.Hour))
	require.NoError(t, err)
	require.NoError(t, fc.Start(ctx))
	t.Cleanup(func() { assert.NoError(t, fc.Close(context.Background())) })
	_, err = fc.Toggle(ctx, "preview.device-presets", false, flags.Change{By: "ops"})
	require.NoError(t, err)
	ofc := newOF(t, fc)

	events := make(chan of.EventType, 16)
	for _, typ := range []of.EventType{of.ProviderStale, of.ProviderReady} {
		cb := func(d of.EventDetails) { events <- typ }
		ofc.AddHandler(typ, &cb)
	}
	next := func() of.EventType {
		select {
		case e := <-events:
			return e
		case <-time.After(5 * time.Second):
			t.Fatal("no event")
			return ""
		}
	}
	// AddHandler on a ready client replays PROVIDER_READY once.
	assert.Equal(t, of.ProviderReady, next())

	s.down.Store(true)
	mu.Lock()
	now = now.Add(2 * time.Hour)
	mu.Unlock()
	require.Error(t, fc.Refresh(ctx))
	assert.Equal(t, of.ProviderStale, next())
	d, err := ofc.BooleanValueDetails(ctx, "preview.device-presets", false, of.EvaluationContext{})
	require.NoError(t, err)
	assert.True(t, d.Value, "registered default while stale")
	assert.Equal(t, "stale", d.FlagMetadata["source"])

	s.down.Store(false)
	require.NoError(t, fc.Refresh(ctx))
	assert.Equal(t, of.ProviderReady, next())
	assert.False(t, ofc.Boolean(ctx, "preview.device-presets", true, of.EvaluationContext{}))
}

// TestCallerTenant: with neither a tenant attribute nor a targeting key in
// the evaluation context, the provider evaluates for the verified caller's
// tenant (hardening.CallerFrom of the evaluation's Go context); an explicit
// attribute or targeting key still wins.
func TestCallerTenant(t *testing.T) {
	ctx := context.Background()
	fc := startClient(t, flags.NewMemoryStore())
	ofc := newOF(t, fc)
	_, err := fc.Toggle(ctx, "llm.streaming", true, flags.Change{By: "ops", TenantID: "acme"})
	require.NoError(t, err)

	acme := hardening.WithCaller(ctx, hardening.Caller{Subject: "u1", Tenant: "acme"})
	d, err := ofc.BooleanValueDetails(acme, "llm.streaming", false, of.NewTargetlessEvaluationContext(nil))
	require.NoError(t, err)
	assert.True(t, d.Value)
	assert.Equal(t, of.TargetingMatchReason, d.Reason)

	d, err = ofc.BooleanValueDetails(ctx, "llm.streaming", false, of.NewTargetlessEvaluationContext(nil))
	require.NoError(t, err)
	assert.False(t, d.Value, "no caller: no tenant")

	d, err = ofc.BooleanValueDetails(acme, "llm.streaming", false, of.NewEvaluationContext("globex", nil))
	require.NoError(t, err)
	assert.False(t, d.Value, "the targeting key wins over the caller")
}

// TestOptions: options are validated by New.
func TestOptions(t *testing.T) {
	fc := startClient(t, flags.NewMemoryStore())
	_, err := flagsof.New(fc, flagsof.WithTenantAttribute(""))
	assert.ErrorContains(t, err, "empty tenant attribute")
	_, err = flagsof.New(fc, nil, flagsof.WithTenantAttribute("org"))
	assert.NoError(t, err)
	_, err = flagsof.New(nil)
	assert.Error(t, err)
}
