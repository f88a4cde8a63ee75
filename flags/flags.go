package flags

import (
	"context"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"
)

// MaxNameLen is the longest flag name accepted.
const MaxNameLen = 100

// MaxTenantIDLen is the longest tenant ID accepted in a change or query.
const MaxTenantIDLen = 200

// MaxActorLen is the longest ChangedBy accepted.
const MaxActorLen = 200

// MaxReasonLen is the longest reason accepted, in bytes.
const MaxReasonLen = 2000

// DefaultAuditLimit and MaxAuditLimit bound one page of audit records.
const (
	DefaultAuditLimit = 50
	MaxAuditLimit     = 1000
)

// Flag is a flag as registered in code.
type Flag struct {
	// Name is lowercase letters, digits, '-', '_' and '.', at most
	// MaxNameLen characters, for example "preview.device-presets".
	Name string
	// Default is the value when neither the tenant nor the global value is
	// set in the store.
	Default bool
	// Description says what the flag turns on, for operators.
	Description string
}

// ValidateName returns nil when name is a valid flag name, else an error
// wrapping ErrInvalidName.
func ValidateName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty", ErrInvalidName)
	}
	if len(name) > MaxNameLen {
		return fmt.Errorf("%w: %d characters, at most %d", ErrInvalidName, len(name), MaxNameLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' {
			continue
		}
		return fmt.Errorf("%w: %q has %q at byte %d (allowed: a-z 0-9 - _ .)", ErrInvalidName, name, c, i)
	}
	return nil
}

// validText reports whether s is valid UTF-8 without control characters and
// at most max bytes.
func validText(s string, max int) bool {
	if len(s) > max || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

// Change says who changes a flag, for which tenant and why.
type Change struct {
	// By identifies the actor (a user ID); required. Empty means the
	// subject of the context's hardening.Caller (Toggle's ctx).
	By string
	// TenantID is the tenant whose override changes; empty changes the
	// global value.
	TenantID string
	// Reason is free text kept in the audit record.
	Reason string
}

// Validate reports, wrapping ErrInvalidChange, what Toggle would refuse
// in c, so a caller can reject a bad change before doing anything else.
// (Toggle first fills an empty By from the context's caller.)
func (c Change) Validate() error { return c.validate() }

func (c Change) validate() error {
	if c.By == "" || !validText(c.By, MaxActorLen) {
		return fmt.Errorf("%w: By must be 1..%d printable characters", ErrInvalidChange, MaxActorLen)
	}
	if !validText(c.TenantID, MaxTenantIDLen) {
		return fmt.Errorf("%w: TenantID must be at most %d printable characters", ErrInvalidChange, MaxTenantIDLen)
	}
	if len(c.Reason) > MaxReasonLen || !utf8.ValidString(c.Reason) {
		return fmt.Errorf("%w: Reason must be valid UTF-8 of at most %d bytes", ErrInvalidChange, MaxReasonLen)
	}
	return nil
}

// ToggleRequest is what a Store receives for one change: already validated,
// with the time set by the client's clock (UTC, millisecond precision).
type ToggleRequest struct {
	Flag     string
	TenantID string
	Value    bool
	By       string
	Reason   string
	At       time.Time
}

// Record is one audit record. Records are never changed or deleted through
// the API.
type Record struct {
	// ID orders the records of one store: a later change has a larger ID.
	ID int64 `json:"id"`
	// Flag is the flag's name.
	Flag string `json:"flag_name"`
	// TenantID is the tenant whose override changed; empty for the global
	// value.
	TenantID string `json:"tenant_id"`
	// OldValue is the stored value of that scope before the change; nil
	// when none was set (the flag fell back to the global value or its
	// default).
	OldValue *bool `json:"old_value"`
	// NewValue is the value set.
	NewValue bool `json:"new_value"`
	// ChangedBy is Change.By.
	ChangedBy string `json:"changed_by"`
	// ChangedAt is when the change was made (UTC, millisecond precision).
	ChangedAt time.Time `json:"changed_at"`
	// Reason is Change.Reason.
	Reason string `json:"reason"`
}

// Value is one stored value: a flag's global value (TenantID empty) or one
// tenant's override.
type Value struct {
	Flag     string
	TenantID string
	Value    bool
}

// State is every value a store holds, with the version it was read at.
type State struct {
	// Version grows with every change; a replica whose cache was built from
	// version v is up to date while the store's version is still v.
	Version int64
	Values  []Value
}

// AuditQuery selects audit records. Zero fields do not filter.
type AuditQuery struct {
	Flag      string
	TenantID  string
	ChangedBy string
	// Since and Until bound ChangedAt: Since <= ChangedAt < Until.
	Since, Until time.Time
	// Limit is the page size: 0 means DefaultAuditLimit; at most
	// MaxAuditLimit.
	Limit int
	// Cursor is AuditPage.NextCursor of the previous page; empty for the
	// first (newest) page.
	Cursor string
}

// Normalize checks q, applies the default limit and decodes the cursor:
// before is 0 for the first page, otherwise only records with ID < before
// belong to the page. Stores call it first.
func (q *AuditQuery) Normalize() (before int64, err error) {
	if q.Limit < 0 || q.Limit > MaxAuditLimit {
		return 0, fmt.Errorf("%w: limit must be 1..%d", ErrInvalidChange, MaxAuditLimit)
	}
	if q.Limit == 0 {
		q.Limit = DefaultAuditLimit
	}
	if q.Cursor == "" {
		return 0, nil
	}
	before, err = DecodeCursor(q.Cursor)
	if err != nil {
		return 0, err
	}
	return before, nil
}

// Match reports whether r passes q's filters (not the cursor or the
// limit). Stores that filter in Go use it.
func (q *AuditQuery) Match(r *Record) bool {
	if q.Flag != "" && r.Flag != q.Flag {
		return false
	}
	if q.TenantID != "" && r.TenantID != q.TenantID {
		return false
	}
	if q.ChangedBy != "" && r.ChangedBy != q.ChangedBy {
		return false
	}
	if !q.Since.IsZero() && r.ChangedAt.Before(q.Since) {
		return false
	}
	if !q.Until.IsZero() && !r.ChangedAt.Before(q.Until) {
		return false
	}
	return true
}

// AuditPage is one page of records, newest first. Its JSON names are those
// of the reference hub's GET /api/v1/feature-flags/audit answer.
type AuditPage struct {
	Entries []Record `json:"entries"`
	// NextCursor fetches the next (older) page; empty when this page is
	// the last.
	NextCursor string `json:"next_cursor"`
}

// EncodeCursor returns the opaque cursor that continues after the record
// with the given ID.
func EncodeCursor(id int64) string { return "a" + strconv.FormatInt(id, 36) }

// DecodeCursor is EncodeCursor's inverse; it wraps ErrInvalidCursor.
func DecodeCursor(s string) (int64, error) {
	if len(s) < 2 || len(s) > 16 || s[0] != 'a' {
		return 0, ErrInvalidCursor
	}
	id, err := strconv.ParseInt(s[1:], 36, 64)
	if err != nil || id <= 0 || EncodeCursor(id) != s { // canonical form only
		return 0, ErrInvalidCursor
	}
	return id, nil
}

// Store keeps flag values and the audit log. Implementations: MemoryStore,
// flags/sqlitestore, flags/redisstore and flags/postgresstore;
// flags/storetest is the conformance suite every implementation passes.
type Store interface {
	// Load returns every stored value and the version they were read at.
	Load(ctx context.Context) (State, error)
	// Version returns the current version cheaply, so replicas can poll it.
	Version(ctx context.Context) (int64, error)
	// Toggle sets the value and appends the audit record in one atomic
	// step, and returns that record.
	Toggle(ctx context.Context, req ToggleRequest) (Record, error)
	// Audit returns one page of records matching q, newest first.
	Audit(ctx context.Context, q AuditQuery) (AuditPage, error)
}

// Notifier is implemented by stores that push changes made by any replica
// (the Redis store over pub/sub, the Postgres store over LISTEN/NOTIFY). Subscribe calls fn with the flag's name
// after each change until ctx is done, then returns; it returns an error
// when the subscription cannot be set up or breaks. The client polls the
// version as well, so a lost notification only delays a change.
type Notifier interface {
	Subscribe(ctx context.Context, fn func(flag string)) error
}
