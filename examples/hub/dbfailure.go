package main

import (
	"errors"
	"net/http"
	"time"

	"github.com/mattn/go-sqlite3"

	"github.com/systembuilderhub/hardening"
)

// dbFailed answers a failed read or write of the hub's own tables (the
// preview records). A database another connection kept locked for longer
// than busy_timeout (SQLITE_BUSY or SQLITE_LOCKED), or a Postgres server
// that is down or dropped the connection (isPGUnavailable), is a transient
// outage: 503 db_unavailable with Retry-After, like the feature stores'
// 503s. Any other error is 500 internal_error. The cause goes to the log
// only.
func (a *app) dbFailed(w http.ResponseWriter, r *http.Request, what string, err error) {
	a.log.ErrorContext(r.Context(), what, "err", err)
	if detail := unavailableDetail(err); detail != "" {
		p := hardening.NewProblem(http.StatusServiceUnavailable, "db_unavailable", detail)
		p.RetryAfter = time.Second
		hardening.WriteProblem(w, r, p)
		return
	}
	hardening.WriteProblem(w, r, hardening.NewProblem(http.StatusInternalServerError, "internal_error", "the server failed; the error is logged"))
}

// unavailableDetail is the detail of the 503 for a transient database
// outage, empty when err is not one.
func unavailableDetail(err error) string {
	switch {
	case isBusy(err):
		return "the database is busy; try again"
	case isPGUnavailable(err):
		return "the database is unavailable; try again"
	}
	return ""
}

// isBusy reports whether err is SQLite's SQLITE_BUSY or SQLITE_LOCKED.
func isBusy(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se) && (se.Code == sqlite3.ErrBusy || se.Code == sqlite3.ErrLocked)
}
