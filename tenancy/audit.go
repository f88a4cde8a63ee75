package tenancy

import (
	"errors"
	"time"
)

// AuditEntry is one recorded change of a tenant's limit.
type AuditEntry struct {
	Tenant ID
	// Quota is the name of the quota whose limit changed.
	Quota string
	// OldValue is the effective limit before the change (the default when
	// there was no override); NewValue the override set. Either may be
	// Unlimited.
	OldValue  int64
	NewValue  int64
	ChangedBy string
	// ChangedAt has millisecond precision.
	ChangedAt time.Time
	Reason    string
}

// AuditQuery filters and pages the audit log.
type AuditQuery struct {
	// Tenant restricts to one tenant; empty means all.
	Tenant ID
	// Since keeps entries changed at or after it; zero means all.
	Since time.Time
	// Limit is the page size; <= 0 means 100, capped at 1000.
	Limit int
	// Cursor is the NextCursor of the previous page; empty starts.
	Cursor string
}

// AuditPage is one page of the audit log.
type AuditPage struct {
	Entries []AuditEntry
	// NextCursor continues after this page; empty at the end.
	NextCursor string
}

// ErrBadCursor is returned by LimitStore.Audit for a cursor it did not
// issue.
var ErrBadCursor = errors.New("tenancy: malformed audit cursor")
