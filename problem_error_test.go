package hardening_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening"
)

// quotaError stands for a package's typed error: it carries its own
// Problem.
type quotaError struct{ limit int }

func (e *quotaError) Error() string { return fmt.Sprintf("over the limit of %d", e.limit) }
func (e *quotaError) Problem() hardening.Problem {
	return hardening.NewProblem(http.StatusTooManyRequests, "orders_rate_exceeded", "slow down").With("limit", e.limit)
}

func decode(t *testing.T, rec *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &m))
	return m
}

func TestWriteErrorFindsTheErrorThroughWrapping(t *testing.T) {
	err := fmt.Errorf("handler: %w", &quotaError{limit: 5})
	var e hardening.Error
	require.True(t, errors.As(err, &e))
	rec := httptest.NewRecorder()
	hardening.WriteError(rec, httptest.NewRequest(http.MethodPost, "/orders", nil), err)
	assert.Equal(t, http.StatusTooManyRequests, rec.Code)
	m := decode(t, rec)
	assert.Equal(t, "orders_rate_exceeded", m["reason"])
	assert.Equal(t, float64(5), m["limit"])
	assert.Equal(t, hardening.DefaultTypeBase+"orders_rate_exceeded", m["type"])
}

func TestWriteErrorHidesUnknownErrors(t *testing.T) {
	rec := httptest.NewRecorder()
	hardening.WriteError(rec, httptest.NewRequest(http.MethodGet, "/x", nil), errors.New("dial tcp 10.0.0.7:5432: secret detail"))
	assert.Equal(t, http.StatusInternalServerError, rec.Code)
	assert.NotContains(t, rec.Body.String(), "10.0.0.7")
	assert.Equal(t, "internal_error", decode(t, rec)["reason"])
}

func TestProblemIsAnError(t *testing.T) {
	var err error = hardening.NewProblem(http.StatusConflict, "in_flight", "retry later")
	var e hardening.Error
	require.True(t, errors.As(fmt.Errorf("wrapped: %w", err), &e))
	assert.Equal(t, http.StatusConflict, e.Problem().Status)
	assert.Equal(t, "in_flight: retry later", err.Error())
}

func TestProblemWriterTypeBase(t *testing.T) {
	pw := hardening.ProblemWriter{TypeBase: "https://api.example.com/errors#"}
	rec := httptest.NewRecorder()
	pw.WriteError(rec, httptest.NewRequest(http.MethodGet, "/x", nil), &quotaError{limit: 1})
	assert.Equal(t, "https://api.example.com/errors#orders_rate_exceeded", decode(t, rec)["type"])

	rec = httptest.NewRecorder()
	pw.Write(rec, nil, hardening.Problem{Status: 400, Reason: "r", Type: "urn:own"})
	assert.Equal(t, "urn:own", decode(t, rec)["type"], "a Problem's own Type wins")
}

// Example_errorHandler: a service answers the kit's errors in its own
// problem type namespace by giving each middleware an ErrorHandler.
func Example_errorHandler() {
	pw := hardening.ProblemWriter{TypeBase: "https://api.example.com/problems/"}
	var onError hardening.ErrorHandler = pw.WriteError

	rec := httptest.NewRecorder()
	onError(rec, httptest.NewRequest(http.MethodPost, "/orders", nil),
		hardening.NewProblem(http.StatusTooManyRequests, "orders_rate_exceeded", `the "orders" rate limit is exhausted`).With("limit", 5))
	fmt.Println(rec.Code, rec.Header().Get("Content-Type"))
	_, _ = os.Stdout.Write(rec.Body.Bytes())
	// Output:
	// 429 application/problem+json
	// {"detail":"the \"orders\" rate limit is exhausted","instance":"/orders","limit":5,"reason":"orders_rate_exceeded","status":429,"title":"Too Many Requests","type":"https://api.example.com/problems/orders_rate_exceeded"}
}
