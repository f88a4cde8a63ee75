// Package sqlaudit reads a page of the flag audit from the
// hardening_flag_audit table, the same in every SQL store of flags.
package sqlaudit

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/systembuilderhub/hardening/flags"
)

// Page returns the entries of q, newest first, and the cursor of the next
// page. Errors are prefixed with who ("flags/sqlitestore"); the query's
// placeholders follow db's driver (db.Rebind).
func Page(ctx context.Context, db *sqlx.DB, who string, q flags.AuditQuery) (flags.AuditPage, error) {
	before, err := q.Normalize()
	if err != nil {
		return flags.AuditPage{}, err
	}
	query, args := build(q, before)
	rows, err := db.QueryContext(ctx, db.Rebind(query), args...)
	if err != nil {
		return flags.AuditPage{}, fmt.Errorf("%s: audit: %w", who, err)
	}
	defer rows.Close()
	page, err := scan(rows, q.Limit)
	if err != nil {
		return flags.AuditPage{}, fmt.Errorf("%s: audit: %w", who, err)
	}
	return page, nil
}

// build returns the SELECT of q (with "?" placeholders) and its arguments;
// it asks for one entry more than the limit, to know whether a next page
// exists.
func build(q flags.AuditQuery, before int64) (string, []any) {
	var where []string
	var args []any
	add := func(cond string, arg any) { where = append(where, cond); args = append(args, arg) }
	if before > 0 {
		add("id < ?", before)
	}
	if q.Flag != "" {
		add("flag_name = ?", q.Flag)
	}
	if q.TenantID != "" {
		add("tenant_id = ?", q.TenantID)
	}
	if q.ChangedBy != "" {
		add("changed_by = ?", q.ChangedBy)
	}
	if !q.Since.IsZero() {
		add("changed_at >= ?", q.Since.UnixMilli())
	}
	if !q.Until.IsZero() {
		add("changed_at < ?", q.Until.UnixMilli())
	}
	query := `SELECT id, flag_name, tenant_id, old_value, new_value, changed_by, changed_at, reason FROM hardening_flag_audit`
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	return query + " ORDER BY id DESC LIMIT ?", append(args, q.Limit+1)
}

// scan reads the rows of build's query into a page of at most limit.
func scan(rows *sql.Rows, limit int) (flags.AuditPage, error) {
	var page flags.AuditPage
	for rows.Next() {
		var r flags.Record
		var old sql.NullBool
		var at int64
		if err := rows.Scan(&r.ID, &r.Flag, &r.TenantID, &old, &r.NewValue, &r.ChangedBy, &at, &r.Reason); err != nil {
			return flags.AuditPage{}, err
		}
		if old.Valid {
			v := old.Bool
			r.OldValue = &v
		}
		r.ChangedAt = time.UnixMilli(at).UTC()
		page.Entries = append(page.Entries, r)
	}
	if err := rows.Err(); err != nil {
		return flags.AuditPage{}, err
	}
	if len(page.Entries) > limit {
		page.Entries = page.Entries[:limit]
		page.NextCursor = flags.EncodeCursor(page.Entries[limit-1].ID)
	}
	return page, nil
}
