// Package sqlkit holds what the SQL stores of tenancy (sqlitestore,
// postgresstore) share and users of the kit never call: the rows of
// overrides and of the audit log, as their queries scan them, and how
// those rows become tenancy values.
package sqlkit

import (
	"strconv"
	"time"

	"github.com/systembuilderhub/hardening/tenancy"
)

// Override is one stored per-tenant override.
type Override struct {
	Quota string `db:"quota"`
	Value int64  `db:"value"`
}

// Effective returns the limits of the quotas named in defaults: the
// override where rows hold one, else the default.
func Effective(rows []Override, defaults tenancy.Limits) tenancy.Limits {
	out := make(tenancy.Limits, len(defaults))
	for name, d := range defaults {
		out[name] = d
	}
	for _, r := range rows {
		if _, declared := defaults[r.Quota]; declared {
			out[r.Quota] = r.Value
		}
	}
	return out
}

// AuditRow is one stored audit entry (changed_at in Unix milliseconds).
type AuditRow struct {
	ID        int64  `db:"id"`
	Tenant    string `db:"tenant_id"`
	Quota     string `db:"quota"`
	Old       int64  `db:"old_value"`
	New       int64  `db:"new_value"`
	ChangedBy string `db:"changed_by"`
	ChangedAt int64  `db:"changed_at"`
	Reason    string `db:"reason"`
}

// After parses an audit cursor: the id of the last entry of the previous
// page, 0 for none; tenancy.ErrBadCursor for one a store did not issue.
func After(cursor string) (int64, error) {
	if cursor == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(cursor, 10, 64)
	if err != nil || n < 0 {
		return 0, tenancy.ErrBadCursor
	}
	return n, nil
}

// Since returns the lower bound of changed_at in Unix milliseconds (0 for
// the zero time).
func Since(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// Page turns up to size+1 rows, read in id order, into a page of size
// entries and the cursor after it (empty when the rows end).
func Page(rows []AuditRow, size int) tenancy.AuditPage {
	var page tenancy.AuditPage
	for i, r := range rows {
		if i == size {
			page.NextCursor = strconv.FormatInt(rows[i-1].ID, 10)
			break
		}
		page.Entries = append(page.Entries, tenancy.AuditEntry{Tenant: tenancy.ID(r.Tenant), Quota: r.Quota, OldValue: r.Old, NewValue: r.New,
			ChangedBy: r.ChangedBy, ChangedAt: time.UnixMilli(r.ChangedAt).UTC(), Reason: r.Reason})
	}
	return page
}
