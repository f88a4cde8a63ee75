package tenancy

import (
	"context"
	"errors"
	"fmt"
)

// MaxIDLength is the longest tenant id ParseID accepts.
const MaxIDLength = 64

// ID identifies a tenant. A valid ID is 1 to MaxIDLength bytes of ASCII
// letters, digits, '-', '_' and '.', starting with a letter or digit. The
// charset keeps ids safe in SQL, log lines, metric labels and Redis keys
// (no '{', '}' or ':' that would break hash tags or key layouts).
type ID string

// ErrInvalidID is returned (wrapped) by ParseID for a malformed tenant id.
var ErrInvalidID = errors.New("tenancy: invalid tenant id")

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
	return context.WithValue(ctx, tenantKey, tenantValue{id: id, valid: id.Valid()})
}

// FromContext returns the tenant carried by ctx and whether there is a
// valid one. It never panics.
func FromContext(ctx context.Context) (ID, bool) {
	if ctx == nil {
		return "", false
	}
	v, ok := ctx.Value(tenantKey).(tenantValue)
	if !ok || !v.valid {
		return "", false
	}
	return v.id, true
}
