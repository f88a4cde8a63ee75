package tenancy

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/systembuilderhub/hardening"
)

// HeaderTenantID is the conventional header a trusted hop (an API gateway
// that authenticated the caller) uses to pass the tenant on.
const HeaderTenantID = "X-Tenant-ID"

// Middleware puts the request's tenant into its context (see WithTenant)
// or answers with a problem and does not call the next handler.
//
// The tenant is the Tenant of the verified hardening.Caller in the request
// context (put there by hardening.RequireCaller or the service's own
// authentication), unless WithIdentity supplies another function. A
// client header such as X-Tenant-ID is never read unless the caller
// configured it with WithTrustedHeader and the trust predicate accepts the
// request's hop.
type Middleware struct {
	identity func(*http.Request) (string, error)
	header   string
	trusted  func(*http.Request) bool
	log      *slog.Logger
	onError  hardening.ErrorHandler
}

// callerTenant is the default identity: the Tenant of the context's
// hardening.Caller, "" without one.
func callerTenant(r *http.Request) (string, error) {
	c, _ := hardening.CallerFrom(r.Context())
	return c.Tenant, nil
}

// New returns the tenant middleware. Its options are WithIdentity,
// WithTrustedHeader, WithErrorHandler and WithLogger; without
// WithIdentity the tenant is hardening.CallerFrom(ctx).Tenant.
func New(opts ...MiddlewareOption) (*Middleware, error) {
	c := &middlewareConfig{}
	for _, o := range opts {
		if o != nil {
			o.applyMiddleware(c)
		}
	}
	if c.identitySet && c.identity == nil {
		return nil, errors.New("tenancy: WithIdentity: nil function")
	}
	if c.header != "" && c.trusted == nil {
		return nil, errors.New("tenancy: WithTrustedHeader: nil trust predicate")
	}
	if c.header == "" && c.trusted != nil {
		return nil, errors.New("tenancy: WithTrustedHeader: empty header name")
	}
	m := &Middleware{identity: c.identity, header: c.header, trusted: c.trusted, log: discardIfNil(c.log), onError: c.onError}
	if m.identity == nil {
		m.identity = callerTenant
	}
	if m.onError == nil {
		m.onError = hardening.WriteError
	}
	return m, nil
}

// Handler wraps next: next runs only with a valid tenant in the context.
// Otherwise the error handler (default hardening.WriteError) answers a
// *TenantError: no tenant 401 (reason tenant_required), a malformed or
// conflicting one 403 (tenant_invalid, tenant_mismatch).
func (m *Middleware) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := m.tenant(r)
		if err != nil {
			m.onError(w, r, err)
			return
		}
		if cur, ok := FromContext(r.Context()); ok && cur == id {
			// The context already gives this tenant (the Caller's,
			// by default): no new context or request to allocate.
			next.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r.WithContext(WithTenant(r.Context(), id)))
	})
}

// tenant returns the request's tenant or the *TenantError refusing it.
func (m *Middleware) tenant(r *http.Request) (ID, error) {
	raw, err := m.identity(r)
	if err != nil {
		m.log.WarnContext(r.Context(), "tenancy: identity rejected", "path", r.URL.Path, "error", err)
		return "", &TenantError{Reason: ReasonTenantRequired, Err: err}
	}
	if m.header != "" {
		if hv := r.Header.Get(m.header); hv != "" && m.trusted(r) {
			switch {
			case raw == "":
				raw = hv
			case raw != hv:
				m.log.WarnContext(r.Context(), "tenancy: tenant header contradicts identity", "path", r.URL.Path, "identity_tenant", raw)
				return "", &TenantError{Reason: ReasonTenantMismatch}
			}
		}
	}
	if raw == "" {
		return "", &TenantError{Reason: ReasonTenantRequired, Err: ErrNoTenant}
	}
	id, err := ParseID(raw)
	if err != nil {
		m.log.WarnContext(r.Context(), "tenancy: malformed tenant id", "path", r.URL.Path, "error", err)
		return "", &TenantError{Reason: ReasonTenantInvalid, Err: err}
	}
	return id, nil
}
