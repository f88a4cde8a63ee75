package tenancy

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/systembuilderhub/hardening/internal/problem"
)

// IdentityFunc extracts the tenant from an identity the caller has already
// verified, for example the "tid" claim of a bearer token checked by an
// earlier middleware. It returns "" when the request carries no tenant and
// an error when the identity cannot be established; both answer 401.
type IdentityFunc func(r *http.Request) (string, error)

// HeaderTenantID is the conventional header a trusted hop (an API gateway
// that authenticated the caller) uses to pass the tenant on.
const HeaderTenantID = "X-Tenant-ID"

// Middleware puts the request's tenant into its context (see WithTenant)
// or answers with a problem and does not call the next handler.
//
// The tenant comes from the caller-supplied IdentityFunc. A client header
// such as X-Tenant-ID is never read unless the caller configured it with
// WithTrustedHeader and the trust predicate accepts the request's hop.
type Middleware struct {
	identity IdentityFunc
	header   string
	trusted  func(*http.Request) bool
	log      *slog.Logger
}

// New returns the tenant middleware. identity is required; the options
// are WithTrustedHeader and WithLogger.
func New(identity IdentityFunc, opts ...MiddlewareOption) (*Middleware, error) {
	if identity == nil {
		return nil, errors.New("tenancy: New: nil IdentityFunc")
	}
	c := &middlewareConfig{}
	for _, o := range opts {
		if o != nil {
			o.applyMiddleware(c)
		}
	}
	c.log = discardIfNil(c.log)
	if c.header != "" && c.trusted == nil {
		return nil, errors.New("tenancy: WithTrustedHeader: nil trust predicate")
	}
	if c.header == "" && c.trusted != nil {
		return nil, errors.New("tenancy: WithTrustedHeader: empty header name")
	}
	return &Middleware{identity: identity, header: c.header, trusted: c.trusted, log: c.log}, nil
}

// Handler wraps next: next runs only with a valid tenant in the context.
// No tenant answers 401 (reason tenant_required), a malformed or
// conflicting one 403 (tenant_invalid, tenant_mismatch).
func (m *Middleware) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, err := m.identity(r)
		if err != nil {
			m.log.WarnContext(r.Context(), "tenancy: identity rejected", "path", r.URL.Path, "error", err)
			problem.Write(w, r, problem.New(http.StatusUnauthorized, "tenant_required", "the request carries no verified tenant"))
			return
		}
		if m.header != "" {
			if hv := r.Header.Get(m.header); hv != "" && m.trusted(r) {
				switch {
				case raw == "":
					raw = hv
				case raw != hv:
					m.log.WarnContext(r.Context(), "tenancy: tenant header contradicts identity", "path", r.URL.Path, "identity_tenant", raw)
					problem.Write(w, r, problem.New(http.StatusForbidden, "tenant_mismatch", "the tenant header does not match the verified identity"))
					return
				}
			}
		}
		if raw == "" {
			problem.Write(w, r, problem.New(http.StatusUnauthorized, "tenant_required", "the request carries no verified tenant"))
			return
		}
		id, err := ParseID(raw)
		if err != nil {
			m.log.WarnContext(r.Context(), "tenancy: malformed tenant id", "path", r.URL.Path, "error", err)
			problem.Write(w, r, problem.New(http.StatusForbidden, "tenant_invalid", "the tenant id is malformed"))
			return
		}
		next.ServeHTTP(w, r.WithContext(WithTenant(r.Context(), id)))
	})
}
