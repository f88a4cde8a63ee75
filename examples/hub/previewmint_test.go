package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening/previewsec"
	"github.com/systembuilderhub/hardening/tenancy"
)

func jsonBody(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

// TestPreviewJWTValidatesLikePreviews: POST /api/v1/preview-security/jwt
// refuses the system_id and device_preset that POST /api/v1/previews
// refuses, with the same reason and detail (item 12 of issue 13: the mint
// signed any device_preset, up to the 1 MB body).
func TestPreviewJWTValidatesLikePreviews(t *testing.T) {
	a, url := newTestApp(t)
	alice := mintToken(t, a, "alice", "acme", false)
	rec := seedPreview(t, a, "acme")
	cases := []struct{ name, system, device string }{
		{"system_id too long", strings.Repeat("s", 129), "desktop"},
		{"system_id with NUL", "a\x00b", "desktop"},
		{"system_id with a newline", "a\nb", "desktop"},
		{"device_preset too long", "sys-1", strings.Repeat("d", 129)},
		{"device_preset of 1 MB", "sys-1", strings.Repeat("d", 1000_000)},
		{"device_preset DEL", "sys-1", "\u007f"},
		{"device_preset with a tab", "sys-1", "x\ty"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, b := call(t, "POST", url+"/api/v1/previews", alice, jsonBody(t, map[string]string{"system_id": tc.system, "device_preset": tc.device}))
			require.Equal(t, http.StatusBadRequest, resp.StatusCode, string(b))
			want := decodeBody(t, b)

			resp, got := mintPreviewJWT(t, url, alice, jsonBody(t, map[string]string{"preview_id": rec.ID, "system_id": tc.system, "device_preset": tc.device}))
			require.Equal(t, http.StatusBadRequest, resp.StatusCode, got)
			assert.Equal(t, want["reason"], got["reason"])
			assert.Equal(t, want["detail"], got["detail"])
			assert.Nil(t, got["token"])
		})
	}
}

// TestPreviewJWTLongestValidInputs: the longest valid inputs, in the
// characters JSON escapes the most ("<" becomes \u003c), still give a
// token the verifier accepts; an identity that would not fit gets no token.
func TestPreviewJWTLongestValidInputs(t *testing.T) {
	a, url := newTestApp(t)
	worst := strings.Repeat("<", 128)
	tenant := "t" + strings.Repeat("-", tenancy.MaxIDLength-1)
	user := mintToken(t, a, worst, tenant, false)
	resp, b := call(t, "POST", url+"/api/v1/previews", user, jsonBody(t, map[string]string{"system_id": worst, "device_preset": worst}))
	require.Equal(t, http.StatusCreated, resp.StatusCode, string(b))
	created := decodeBody(t, b)
	require.NotEmpty(t, created["token"], "the create response carries a token")
	pid := created["preview_id"].(string)

	maxMinutes := int(a.previewTokens().issuer.MaxTTL().Minutes())
	resp, body := mintPreviewJWT(t, url, user, jsonBody(t, map[string]any{"preview_id": pid, "system_id": worst, "device_preset": worst, "ttl_minutes": maxMinutes}))
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	for _, tok := range []string{created["token"].(string), body["token"].(string)} {
		assert.LessOrEqual(t, len(tok), previewsec.DefaultMaxTokenLength)
		c, err := a.previewTokens().verifier.Verify(context.Background(), tok)
		require.NoError(t, err)
		assert.Equal(t, worst, c.Device)
		assert.Equal(t, worst, c.SystemID)
		resp, page := call(t, "GET", url+"/preview/"+pid+"/", tok, "")
		assert.Equal(t, http.StatusOK, resp.StatusCode, string(page))
	}
	t.Logf("longest valid preview token: %d bytes (verifier cap %d)", len(body["token"].(string)), previewsec.DefaultMaxTokenLength)

	// A bearer token whose sub is long enough to push the preview token
	// over the verifier's cap: no token, on the mint and on create.
	huge := mintToken(t, a, strings.Repeat("<", 700), tenant, false)
	resp, body = mintPreviewJWT(t, url, huge, jsonBody(t, map[string]any{"preview_id": pid, "system_id": worst, "device_preset": worst}))
	require.Equal(t, http.StatusBadRequest, resp.StatusCode, body)
	assert.Equal(t, "preview_token_too_long", body["reason"])
	assert.Nil(t, body["token"])
	resp, b = call(t, "POST", url+"/api/v1/previews", huge, jsonBody(t, map[string]string{"system_id": worst, "device_preset": worst}))
	require.Equal(t, http.StatusCreated, resp.StatusCode, string(b))
	assert.Nil(t, decodeBody(t, b)["token"], "no token the verifier would refuse")
}
