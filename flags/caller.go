package flags

import (
	"context"

	"github.com/systembuilderhub/hardening"
)

// callerTenant is the default tenant function: the tenant of the verified
// caller that hardening.RequireCaller (or hardening.WithCaller) put in ctx.
func callerTenant(ctx context.Context) string {
	c, _ := hardening.CallerFrom(ctx)
	return c.Tenant
}

// EvaluateContext is Evaluate for the tenant of the caller of ctx: by
// default hardening.CallerFrom(ctx).Tenant (no caller, or a caller without
// a tenant, means no override applies); WithTenantFrom replaces that. Use
// it in handlers behind hardening.RequireCaller. Like Evaluate it reads
// only the cache and does not allocate.
func (c *Client) EvaluateContext(ctx context.Context, name string, def bool) Evaluation {
	return c.Evaluate(name, c.cfg.tenant(ctx), def)
}

// EnabledContext is EvaluateContext's value.
func (c *Client) EnabledContext(ctx context.Context, name string, def bool) bool {
	return c.Evaluate(name, c.cfg.tenant(ctx), def).Value
}

// ListContext is List for the tenant of the caller of ctx (see
// EvaluateContext).
func (c *Client) ListContext(ctx context.Context) []Status {
	return c.List(c.cfg.tenant(ctx))
}

// EvaluateContext is Handle.Evaluate for the tenant of the caller of ctx
// (see Client.EvaluateContext).
func (h Handle) EvaluateContext(ctx context.Context) Evaluation {
	return h.Evaluate(h.c.cfg.tenant(ctx))
}

// EnabledContext is EvaluateContext's value.
func (h Handle) EnabledContext(ctx context.Context) bool {
	return h.Evaluate(h.c.cfg.tenant(ctx)).Value
}
