// Package sqlitestore is the SQLite flags.Store. The schema comes from the
// kit's migrate package (hardening_flags, hardening_flag_audit,
// hardening_flags_version); the store never creates tables.
//
// Every toggle is one BEGIN IMMEDIATE transaction that reads the old value,
// writes the new one, appends the audit row and bumps the one-row version
// table, so replicas on the same file can poll the version with one
// primary-key SELECT.
package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/systembuilderhub/hardening/flags"
	"github.com/systembuilderhub/hardening/flags/internal/sqlaudit"
	"github.com/systembuilderhub/hardening/internal/sqlitex"
)

// Store is the SQLite flags.Store.
type Store struct{ db *sqlx.DB }

var _ flags.Store = (*Store)(nil)

// New returns a store on db, opened by the caller with the kit's settings
// (migrate.OpenSQLite) and migrated (migrate.Up).
func New(db *sqlx.DB) (*Store, error) {
	if db == nil {
		return nil, errors.New("flags/sqlitestore: nil db")
	}
	return &Store{db: db}, nil
}

// Version implements flags.Store: one primary-key lookup.
func (s *Store) Version(ctx context.Context) (int64, error) {
	var v int64
	err := s.db.QueryRowContext(ctx, `SELECT version FROM hardening_flags_version WHERE id = 1`).Scan(&v)
	if err != nil {
		return 0, fmt.Errorf("flags/sqlitestore: version: %w", err)
	}
	return v, nil
}

// Load implements flags.Store. Version and values are read in one read
// transaction, so they are consistent.
func (s *Store) Load(ctx context.Context) (flags.State, error) {
	tx, err := s.db.BeginTxx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return flags.State{}, fmt.Errorf("flags/sqlitestore: load: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	var st flags.State
	if err := tx.QueryRowContext(ctx, `SELECT version FROM hardening_flags_version WHERE id = 1`).Scan(&st.Version); err != nil {
		return flags.State{}, fmt.Errorf("flags/sqlitestore: load: %w", err)
	}
	rows, err := tx.QueryContext(ctx, `SELECT name, tenant_id, value FROM hardening_flags`)
	if err != nil {
		return flags.State{}, fmt.Errorf("flags/sqlitestore: load: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var v flags.Value
		if err := rows.Scan(&v.Flag, &v.TenantID, &v.Value); err != nil {
			return flags.State{}, fmt.Errorf("flags/sqlitestore: load: %w", err)
		}
		st.Values = append(st.Values, v)
	}
	if err := rows.Err(); err != nil {
		return flags.State{}, fmt.Errorf("flags/sqlitestore: load: %w", err)
	}
	return st, nil
}

// Toggle implements flags.Store in one BEGIN IMMEDIATE transaction.
func (s *Store) Toggle(ctx context.Context, req flags.ToggleRequest) (flags.Record, error) {
	rec := flags.Record{
		Flag:      req.Flag,
		TenantID:  req.TenantID,
		NewValue:  req.Value,
		ChangedBy: req.By,
		ChangedAt: time.UnixMilli(req.At.UnixMilli()).UTC(),
		Reason:    req.Reason,
	}
	err := sqlitex.Immediate(ctx, s.db, func(c *sqlx.Conn) error {
		var old sql.NullBool
		err := c.QueryRowContext(ctx, `SELECT value FROM hardening_flags WHERE name = ? AND tenant_id = ?`,
			req.Flag, req.TenantID).Scan(&old)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		rec.OldValue = nil
		if old.Valid {
			v := old.Bool
			rec.OldValue = &v
		}
		at := rec.ChangedAt.UnixMilli()
		if _, err := c.ExecContext(ctx, `INSERT INTO hardening_flags (name, tenant_id, value, updated_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (name, tenant_id) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
			req.Flag, req.TenantID, req.Value, at); err != nil {
			return err
		}
		res, err := c.ExecContext(ctx, `INSERT INTO hardening_flag_audit
			(flag_name, tenant_id, old_value, new_value, changed_by, changed_at, reason) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			req.Flag, req.TenantID, old, req.Value, req.By, at, req.Reason)
		if err != nil {
			return err
		}
		if rec.ID, err = res.LastInsertId(); err != nil {
			return err
		}
		_, err = c.ExecContext(ctx, `UPDATE hardening_flags_version SET version = version + 1 WHERE id = 1`)
		return err
	})
	if err != nil {
		return flags.Record{}, fmt.Errorf("flags/sqlitestore: toggle: %w", err)
	}
	return rec, nil
}

// Audit implements flags.Store: the filters and the cursor are one indexed
// query, newest first.
func (s *Store) Audit(ctx context.Context, q flags.AuditQuery) (flags.AuditPage, error) {
	return sqlaudit.Page(ctx, s.db, "flags/sqlitestore", q)
}
