package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"testing"

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
