package tenancy

import (
	"context"
	"fmt"
	"net/http"

	"github.com/systembuilderhub/hardening"
	"github.com/systembuilderhub/hardening/internal/ctxval"
)

// MaxIDLength is the longest tenant id ParseID accepts.
const MaxIDLength = 64

// ID identifies a tenant. A valid ID is 1 to MaxIDLength bytes of ASCII
// letters, digits, '-', '_' and '.', starting with a letter or digit. The
// charset keeps ids safe in SQL, log lines, metric labels and Redis keys
// (no '{', '}' or ':' that would break hash tags or key layouts).
type ID string

// ErrInvalidID is returned (wrapped) by ParseID for a malformed tenant id.
// It is a hardening.Error: 400 tenant_invalid (the tenant middleware
// answers a malformed verified tenant 403, with a TenantError).
var ErrInvalidID = newProblemError("tenancy: invalid tenant id",
	http.StatusBadRequest, ReasonTenantInvalid, "the tenant id is malformed")

// ParseID validates s as a tenant id.
func ParseID(s string) (ID, error) {
	if s == "" {
		return "", fmt.Errorf("%w: empty", ErrInvalidID)
	}
	if len(s) > MaxIDLength {
		return "", fmt.Errorf("%w: longer than %d bytes", ErrInvalidID, MaxIDLength)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case (c == '-' || c == '_' || c == '.') && i > 0:
		default:
			return "", fmt.Errorf("%w: byte %d (%q) is not one of [A-Za-z0-9._-] or starts the id", ErrInvalidID, i, c)
		}
	}
	return ID(s), nil
}

// Valid reports whether id passes ParseID.
func (id ID) Valid() bool {
	_, err := ParseID(string(id))
	return err == nil
}

// String returns the id as a string.
func (id ID) String() string { return string(id) }

type ctxKey struct{}

var tenantKey = &ctxKey{}

// tenantValue is the context value: the id, checked once by WithTenant.
type tenantValue struct {
	id    ID
	valid bool
}

// WithTenant returns a copy of ctx carrying tenant id. Only valid ids are
// ever returned by FromContext: storing an invalid id is the same as storing
// none (it also hides a tenant stored earlier), so code downstream fails
// closed.
func WithTenant(ctx context.Context, id ID) context.Context {
	return ctxval.With(ctx, tenantKey, "WithTenant", tenantValue{id: id, valid: id.Valid()})
}

// FromContext returns the tenant carried by ctx and whether there is a
// valid one. It never panics.
//
// The tenant is the one stored by WithTenant (the tenant middleware does
// that). A context without one falls back to the Tenant of the verified
// hardening.Caller (hardening.RequireCaller stores it), so quotas and DB
// work behind the service's authentication even without the tenant
// middleware. A WithTenant value always wins, an invalid one included
// (which hides the Caller's tenant too, so code fails closed), and a
// Caller whose Tenant is empty or malformed gives no tenant.
func FromContext(ctx context.Context) (ID, bool) {
	if ctx == nil {
		return "", false
	}
	if v, ok := ctxval.From[tenantValue](ctx, tenantKey); ok {
		return v.id, v.valid
	}
	c, ok := hardening.CallerFrom(ctx)
	if !ok || !ID(c.Tenant).Valid() {
		return "", false
	}
	return ID(c.Tenant), true
}
