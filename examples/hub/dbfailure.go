package main

import (
	"net/http"
	"time"

	"github.com/systembuilderhub/hardening/internal/problem"
	"github.com/systembuilderhub/hardening/internal/sqlitex"
)

// dbFailed answers a failed read or write of the hub's own tables (the
// preview records). A database another connection kept locked for longer
// than busy_timeout (SQLITE_BUSY or SQLITE_LOCKED) is a transient outage:
// 503 db_unavailable with Retry-After, like the feature stores' 503s. Any
// other error is 500 internal_error. The cause goes to the log only.
func (a *app) dbFailed(w http.ResponseWriter, r *http.Request, what string, err error) {
	a.log.ErrorContext(r.Context(), what, "err", err)
	if sqlitex.IsBusy(err) {
		p := problem.New(http.StatusServiceUnavailable, "db_unavailable", "the database is busy; try again")
		p.RetryAfter = time.Second
		problem.Write(w, r, p)
		return
	}
	problem.Write(w, r, problem.New(http.StatusInternalServerError, "internal_error", "the server failed; the error is logged"))
}
