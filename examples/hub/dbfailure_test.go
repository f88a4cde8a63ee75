package main

import (
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	sqlite3 "github.com/mattn/go-sqlite3"
	"github.com/stretchr/testify/assert"
)

func TestDBFailed(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		status     int
		reason     string
		retryAfter string
	}{
		{"busy", fmt.Errorf("insert: %w", sqlite3.Error{Code: sqlite3.ErrBusy}), 503, "db_unavailable", "1"},
		{"locked", sqlite3.Error{Code: sqlite3.ErrLocked}, 503, "db_unavailable", "1"},
		{"disk I/O error", sqlite3.Error{Code: sqlite3.ErrIoErr}, 500, "internal_error", ""},
		{"other", errors.New("boom"), 500, "internal_error", ""},
		{"postgres refused", &pgconn.ConnectError{}, 503, "db_unavailable", "1"},
		{"postgres connection dropped", fmt.Errorf("delete: %w", io.ErrUnexpectedEOF), 503, "db_unavailable", "1"},
		{"postgres bad conn", driver.ErrBadConn, 503, "db_unavailable", "1"},
		{"postgres shutting down", &pgconn.PgError{Code: "57P01"}, 503, "db_unavailable", "1"},
		{"postgres connection exception", &pgconn.PgError{Code: "08006"}, 503, "db_unavailable", "1"},
		{"postgres syntax error", &pgconn.PgError{Code: "42601", Message: "boom"}, 500, "internal_error", ""},
		{"postgres unique violation", &pgconn.PgError{Code: "23505", Message: "boom"}, 500, "internal_error", ""},
	}
	a := &app{log: slog.New(slog.DiscardHandler)}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			a.dbFailed(w, httptest.NewRequest("DELETE", "/api/v1/previews/pv_1", nil), "delete preview", tc.err)
			assert.Equal(t, tc.status, w.Code)
			assert.Equal(t, "application/problem+json", w.Header().Get("Content-Type"))
			assert.Equal(t, tc.reason, decodeBody(t, w.Body.Bytes())["reason"])
			assert.Equal(t, tc.retryAfter, w.Header().Get("Retry-After"))
			assert.NotContains(t, w.Body.String(), "boom")
		})
	}
}
