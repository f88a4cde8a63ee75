package flags_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening"
	"github.com/systembuilderhub/hardening/flags"
)

// failingToggleStore fails every toggle and audit query, as an unreachable
// backend does.
type failingToggleStore struct{ flags.Store }

func (failingToggleStore) Toggle(context.Context, flags.ToggleRequest) (flags.Record, error) {
	return flags.Record{}, errDown
}

func (failingToggleStore) Audit(context.Context, flags.AuditQuery) (flags.AuditPage, error) {
	return flags.AuditPage{}, errDown
}

// TestErrorsAreProblems: every error an application answers a request
// with is a hardening.Error, so hardening.WriteError answers it with the
// right status and reason, and errors.Is still finds the sentinel (and the
// store's own error behind ErrUnavailable).
func TestErrorsAreProblems(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := newClient(t, flags.NewMemoryStore())
	down := newClient(t, failingToggleStore{flags.NewMemoryStore()})

	_, unknown := c.Toggle(ctx, "not.registered", true, flags.Change{By: "a"})
	_, badName := c.Toggle(ctx, "Bad Name", true, flags.Change{By: "a"})
	_, badChange := c.Toggle(ctx, "llm.streaming", true, flags.Change{})
	_, badCursor := c.Audit(ctx, flags.AuditQuery{Cursor: "zzz"})
	_, toggleDown := down.Toggle(ctx, "llm.streaming", true, flags.Change{By: "a"})
	_, auditDown := down.Audit(ctx, flags.AuditQuery{})

	for _, tc := range []struct {
		name     string
		err      error
		sentinel error
		status   int
		reason   string
	}{
		{"unknown flag", unknown, flags.ErrUnknownFlag, 404, "flag_not_found"},
		{"bad name", badName, flags.ErrInvalidName, 400, "invalid_flag_name"},
		{"bad change", badChange, flags.ErrInvalidChange, 400, "invalid_change"},
		{"bad cursor", badCursor, flags.ErrInvalidCursor, 400, "invalid_cursor"},
		{"toggle store down", toggleDown, flags.ErrUnavailable, 503, "flags_unavailable"},
		{"audit store down", auditDown, flags.ErrUnavailable, 503, "flags_unavailable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Error(t, tc.err)
			assert.ErrorIs(t, tc.err, tc.sentinel)
			var he hardening.Error
			require.True(t, errors.As(tc.err, &he), "%v is not a hardening.Error", tc.err)
			assert.Equal(t, tc.status, he.Problem().Status)
			assert.Equal(t, tc.reason, he.Problem().Reason)
			rec := httptest.NewRecorder()
			hardening.WriteError(rec, httptest.NewRequest(http.MethodPost, "/flags", nil), tc.err)
			assert.Equal(t, tc.status, rec.Code)
			assert.Contains(t, rec.Body.String(), `"reason":"`+tc.reason+`"`)
			assert.NotContains(t, rec.Body.String(), "store down", "the store's error stays out of the answer")
		})
	}
	assert.ErrorIs(t, toggleDown, errDown, "the store's error is kept for logs")
	assert.ErrorIs(t, auditDown, errDown)
}

// TestUnknownFlagProblemBytes: WriteError answers ErrUnknownFlag and
// ErrUnavailable with the bytes the reference hub has always written.
func TestUnknownFlagProblemBytes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err  error
		want string
	}{
		{flags.ErrUnknownFlag, `{"detail":"no flag is registered under this name","instance":"/x","reason":"flag_not_found","status":404,"title":"Not Found","type":"https://github.com/systembuilderhub/hardening/blob/main/docs/problems.md#flag_not_found"}` + "\n"},
		{flags.ErrUnavailable, `{"detail":"the flag store is unavailable; retry later","instance":"/x","reason":"flags_unavailable","status":503,"title":"Service Unavailable","type":"https://github.com/systembuilderhub/hardening/blob/main/docs/problems.md#flags_unavailable"}` + "\n"},
	} {
		got, want := httptest.NewRecorder(), httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodGet, "/x", nil)
		hardening.WriteError(got, r, tc.err)
		var he hardening.Error
		require.True(t, errors.As(tc.err, &he))
		p := he.Problem()
		hardening.WriteProblem(want, r, hardening.NewProblem(p.Status, p.Reason, p.Detail))
		assert.Equal(t, tc.want, got.Body.String())
		assert.Equal(t, want.Body.String(), got.Body.String())
	}
}
