package hardening_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening"
)

func TestWrite(t *testing.T) {
	tests := []struct {
		name       string
		p          hardening.Problem
		preset     map[string]string
		wantStatus int
		wantHeader map[string]string
		wantBody   map[string]any
		absent     []string
	}{
		{
			name:       "defaults",
			p:          hardening.Problem{},
			wantStatus: 500,
			wantBody:   map[string]any{"type": "about:blank", "title": "Internal Server Error", "status": float64(500), "instance": "/x"},
			absent:     []string{"detail", "reason", "retry_after_seconds"},
		},
		{
			name:       "reason and retry",
			p:          hardening.Problem{Status: 429, Reason: "snapshot_rate_exceeded", Detail: "slow down", RetryAfter: 1500 * time.Millisecond},
			wantStatus: 429,
			wantHeader: map[string]string{"Retry-After": "2", "Content-Type": hardening.ProblemContentType},
			wantBody: map[string]any{
				"type": hardening.DefaultTypeBase + "snapshot_rate_exceeded", "title": "Too Many Requests",
				"detail": "slow down", "reason": "snapshot_rate_exceeded", "retry_after_seconds": float64(2),
			},
		},
		{
			name:       "extensions cannot replace standard members",
			p:          hardening.NewProblem(402, "llm_budget_exceeded", "over").With("limit", 5).With("status", 200).With("type", "x"),
			wantStatus: 402,
			wantBody:   map[string]any{"status": float64(402), "limit": float64(5), "type": hardening.DefaultTypeBase + "llm_budget_exceeded"},
		},
		{
			name:       "keeps headers set before",
			p:          hardening.Problem{Status: 401, Instance: "/given"},
			preset:     map[string]string{"WWW-Authenticate": "Bearer"},
			wantStatus: 401,
			wantHeader: map[string]string{"WWW-Authenticate": "Bearer"},
			wantBody:   map[string]any{"instance": "/given"},
			absent:     []string{"retry_after_seconds"},
		},
		{
			name:       "unmarshalable extension is dropped",
			p:          hardening.NewProblem(400, "bad", "d").With("fn", func() {}),
			wantStatus: 400,
			wantBody:   map[string]any{"reason": "bad"},
			absent:     []string{"fn"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			for k, v := range tc.preset {
				rec.Header().Set(k, v)
			}
			req := httptest.NewRequest(http.MethodGet, "/x", nil)
			hardening.WriteProblem(rec, req, tc.p)
			assert.Equal(t, tc.wantStatus, rec.Code)
			assert.Equal(t, hardening.ProblemContentType, rec.Header().Get("Content-Type"))
			for k, v := range tc.wantHeader {
				assert.Equal(t, v, rec.Header().Get(k), k)
			}
			var body map[string]any
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
			for k, v := range tc.wantBody {
				assert.Equal(t, v, body[k], k)
			}
			for _, k := range tc.absent {
				assert.NotContains(t, body, k)
			}
		})
	}
}

func TestWithDoesNotAlias(t *testing.T) {
	base := hardening.NewProblem(400, "r", "d").With("a", 1)
	_ = base.With("b", 2)
	assert.NotContains(t, base.Extensions, "b")
}
