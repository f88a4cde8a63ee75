// Package openfeature adapts a *flags.Client to the OpenFeature Go SDK
// (github.com/open-feature/go-sdk), so applications can evaluate the kit's
// flags through the standard OpenFeature client.
//
// The tenant is the evaluation context's "tenant_id" attribute when it is a
// non-empty string, else its targeting key, else the tenant of the verified
// caller of the evaluation's Go context (hardening.CallerFrom, or the
// client's flags.WithTenantFrom adapter): behind hardening.RequireCaller,
// client.Boolean(r.Context(), name, def, of.EvaluationContext{}) evaluates
// for the caller's tenant. Boolean evaluations report:
//
//	tenant override           reason TARGETING_MATCH, variant "on"/"off"
//	global value              reason STATIC
//	registered default        reason DEFAULT
//	unknown flag              the caller's default, error FLAG_NOT_FOUND (the SDK client reports reason ERROR)
//	store unreachable too long the registered default, reason DEFAULT, flag metadata source=stale
//
// Flags are boolean: string, number and object evaluations of a registered
// flag fail with TYPE_MISMATCH. When any replica toggles a flag, the
// provider emits PROVIDER_CONFIGURATION_CHANGED with the flag's name in
// FlagChanges (as soon as this replica's flags.Client cache sees it). When
// the store stays unreachable beyond the client's maximum staleness it
// emits PROVIDER_STALE, and PROVIDER_READY when the store is back.
//
// The provider does not own the flags.Client: start it before registering
// the provider and close it after shutting the OpenFeature API down.
package openfeature

import (
	"context"
	"errors"
	"sync"

	of "github.com/open-feature/go-sdk/openfeature"

	"github.com/systembuilderhub/hardening/flags"
)

// Name is the provider's name in its metadata and events.
const Name = "hardening-flags"

// DefaultTenantAttribute is the evaluation context attribute that selects
// the tenant before the targeting key.
const DefaultTenantAttribute = "tenant_id"

// eventBuffer is how many change events wait for the SDK before more are
// dropped (a dropped event only delays nothing: evaluations read the cache).
const eventBuffer = 64

// Provider is an OpenFeature FeatureProvider, StateHandler and
// EventHandler backed by a *flags.Client.
type Provider struct {
	c          *flags.Client
	tenantAttr string
	events     chan of.Event

	mu     sync.Mutex
	remove func()
	stale  bool // the last state reported by an event
}

var (
	_ of.FeatureProvider = (*Provider)(nil)
	_ of.StateHandler    = (*Provider)(nil)
	_ of.EventHandler    = (*Provider)(nil)
)

type config struct{ tenantAttr string }

// Option configures New, the package's only constructor: an interface with
// an unexported method, as every option of the kit. A nil option is
// ignored; New reports invalid values.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// WithTenantAttribute names the evaluation context attribute that selects
// the tenant (default DefaultTenantAttribute); the targeting key, then the
// caller's tenant, are used when it is absent. An empty name is an error.
func WithTenantAttribute(name string) Option {
	return optionFunc(func(c *config) { c.tenantAttr = name })
}

// New returns a provider for c.
func New(c *flags.Client, opts ...Option) (*Provider, error) {
	if c == nil {
		return nil, errors.New("flags/openfeature: nil client")
	}
	cfg := config{tenantAttr: DefaultTenantAttribute}
	for _, o := range opts {
		if o != nil {
			o.apply(&cfg)
		}
	}
	if cfg.tenantAttr == "" {
		return nil, errors.New("flags/openfeature: empty tenant attribute")
	}
	return &Provider{c: c, tenantAttr: cfg.tenantAttr, events: make(chan of.Event, eventBuffer)}, nil
}

// Metadata implements of.FeatureProvider.
func (p *Provider) Metadata() of.Metadata { return of.Metadata{Name: Name} }

// Hooks implements of.FeatureProvider; the provider has none.
func (p *Provider) Hooks() []of.Hook { return nil }

// Init implements of.StateHandler: it subscribes to the client's cache
// updates to emit PROVIDER_CONFIGURATION_CHANGED.
func (p *Provider) Init(of.EvaluationContext) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.remove == nil {
		p.remove = p.c.OnUpdate(p.emit)
	}
	return nil
}

// Shutdown implements of.StateHandler: it stops emitting events. The
// flags.Client is left running; its owner closes it.
func (p *Provider) Shutdown() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.remove != nil {
		p.remove()
		p.remove = nil
	}
}

// EventChannel implements of.EventHandler.
func (p *Provider) EventChannel() <-chan of.Event { return p.events }

func (p *Provider) emit(changed []string) {
	stale := p.c.Stale()
	p.mu.Lock()
	flipped := stale != p.stale
	p.stale = stale
	p.mu.Unlock()
	if flipped {
		typ, msg := of.ProviderReady, "flag store reachable again"
		if stale {
			typ, msg = of.ProviderStale, "flag store unreachable beyond the maximum staleness; serving registered defaults"
		}
		p.send(of.Event{ProviderName: Name, EventType: typ, ProviderEventDetails: of.ProviderEventDetails{Message: msg}})
	}
	p.send(of.Event{
		ProviderName: Name,
		EventType:    of.ProviderConfigChange,
		ProviderEventDetails: of.ProviderEventDetails{
			Message:     "flags changed",
			FlagChanges: changed,
		},
	})
}

func (p *Provider) send(ev of.Event) {
	select {
	case p.events <- ev:
	default: // the SDK is not draining; evaluations still see the change
	}
}

// evaluate evaluates flag for the tenant of fc, else of the caller of ctx.
func (p *Provider) evaluate(ctx context.Context, flag string, def bool, fc of.FlattenedContext) flags.Evaluation {
	if v, ok := fc[p.tenantAttr].(string); ok && v != "" {
		return p.c.Evaluate(flag, v, def)
	}
	if v, ok := fc[of.TargetingKey].(string); ok && v != "" {
		return p.c.Evaluate(flag, v, def)
	}
	return p.c.EvaluateContext(ctx, flag, def)
}

// BooleanEvaluation implements of.FeatureProvider.
func (p *Provider) BooleanEvaluation(ctx context.Context, flag string, def bool, fc of.FlattenedContext) of.BoolResolutionDetail {
	ev := p.evaluate(ctx, flag, def, fc)
	d := of.ProviderResolutionDetail{Variant: variant(ev.Value), FlagMetadata: of.FlagMetadata{"source": ev.Source.String()}}
	switch ev.Source {
	case flags.SourceOverride:
		d.Reason = of.TargetingMatchReason
	case flags.SourceGlobal:
		d.Reason = of.StaticReason
	case flags.SourceUnknown:
		d.Reason = of.DefaultReason
		d.Variant = ""
		d.ResolutionError = of.NewFlagNotFoundResolutionError("flag " + flag + " is not registered")
	default: // SourceDefault, SourceStale
		d.Reason = of.DefaultReason
	}
	return of.BoolResolutionDetail{Value: ev.Value, ProviderResolutionDetail: d}
}

func variant(v bool) string {
	if v {
		return "on"
	}
	return "off"
}

// notBoolean is the detail of a non-boolean evaluation.
func (p *Provider) notBoolean(flag, kind string) of.ProviderResolutionDetail {
	if _, ok := p.c.Lookup(flag); !ok {
		return of.ProviderResolutionDetail{Reason: of.DefaultReason,
			ResolutionError: of.NewFlagNotFoundResolutionError("flag " + flag + " is not registered")}
	}
	return of.ProviderResolutionDetail{Reason: of.ErrorReason,
		ResolutionError: of.NewTypeMismatchResolutionError("flag " + flag + " is boolean, not " + kind)}
}

// StringEvaluation implements of.FeatureProvider: flags are boolean.
func (p *Provider) StringEvaluation(_ context.Context, flag string, def string, _ of.FlattenedContext) of.StringResolutionDetail {
	return of.StringResolutionDetail{Value: def, ProviderResolutionDetail: p.notBoolean(flag, "string")}
}

// FloatEvaluation implements of.FeatureProvider: flags are boolean.
func (p *Provider) FloatEvaluation(_ context.Context, flag string, def float64, _ of.FlattenedContext) of.FloatResolutionDetail {
	return of.FloatResolutionDetail{Value: def, ProviderResolutionDetail: p.notBoolean(flag, "float")}
}

// IntEvaluation implements of.FeatureProvider: flags are boolean.
func (p *Provider) IntEvaluation(_ context.Context, flag string, def int64, _ of.FlattenedContext) of.IntResolutionDetail {
	return of.IntResolutionDetail{Value: def, ProviderResolutionDetail: p.notBoolean(flag, "int")}
}

// ObjectEvaluation implements of.FeatureProvider: flags are boolean.
func (p *Provider) ObjectEvaluation(_ context.Context, flag string, def any, _ of.FlattenedContext) of.InterfaceResolutionDetail {
	return of.InterfaceResolutionDetail{Value: def, ProviderResolutionDetail: p.notBoolean(flag, "object")}
}
