package main

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/systembuilderhub/hardening"
	"github.com/systembuilderhub/hardening/previewsec"
	"github.com/systembuilderhub/hardening/previewsec/postgresstore"
	"github.com/systembuilderhub/hardening/previewsec/redisstore"
	"github.com/systembuilderhub/hardening/previewsec/sqlitestore"
)

// previewTokens is the hub's preview-token feature: the key ring, issuer,
// verifier, revocation list and the preview middleware.
type previewTokens struct {
	mode     string // "redis", "derived", "sqlite" or "postgres"
	ring     *previewsec.KeyRing
	issuer   *previewsec.Issuer
	verifier *previewsec.Verifier
	revs     *previewsec.RevocationList
	auth     *previewsec.PreviewAuth
}

// previewDBStore is the preview key and revocation store of the hub's
// database, and its name for the log ("sqlite" or "postgres").
func (a *app) previewDBStore() (interface {
	previewsec.KeyStore
	previewsec.RevocationStore
}, string, error) {
	if a.onPostgres() {
		s, err := postgresstore.New(a.db)
		return s, "postgres", err
	}
	s, err := sqlitestore.New(a.db)
	return s, "sqlite", err
}

// previewTokens returns the app's preview-token feature, nil when it is
// not set up.
func (a *app) previewTokens() *previewTokens { return a.previewTokenFeature }

// errPreviewTokensOff is returned when setupPreviewTokens has not run.
var errPreviewTokensOff = errors.New("preview tokens are not set up")

// errPreviewOfOtherTenant is returned by issuePreviewToken for a preview
// the caller's tenant does not own.
var errPreviewOfOtherTenant = errors.New("the preview belongs to another tenant")

// errPreviewTokenTooLong is returned by issuePreviewToken for a token the
// verifier would refuse as too long (a caller identity of hundreds of
// bytes): such a token is never handed out.
var errPreviewTokenTooLong = errors.New("the preview token would be longer than the verifier accepts")

// previewTokenMaxLen is the longest preview token the hub's verifier
// accepts, and so the longest it issues.
const previewTokenMaxLen = previewsec.DefaultMaxTokenLength

// setupPreviewTokens builds the preview-token feature. Keys: the Redis key
// store when REDIS_URL is set, else keys derived from PREVIEW_JWT_SECRET
// when it is set, else the database's key store (SQLite or Postgres).
// Revocations live in Redis or the database. Settings come from PREVIEW_TOKEN_TTL, PREVIEW_TOKEN_MAX_TTL,
// PREVIEW_KEY_ROTATION and PREVIEW_TOKEN_LEEWAY; HUB_REDIS_PREFIX (default
// "hub:") prefixes the Redis keys.
func (a *app) setupPreviewTokens(ctx context.Context) error {
	cfg := a.env.previewTokens
	clock := a.now // captured once: the key ring loop must not read the field tests may replace
	ringOpts := append(cfg.keyRingOptions(), previewsec.WithClock(clock), previewsec.WithLogger(a.log))
	revOpts := append(cfg.revocationOptions(), previewsec.WithClock(clock), previewsec.WithLogger(a.log))

	pt := &previewTokens{}
	var revStore previewsec.RevocationStore
	var err error
	switch {
	case a.rdb != nil:
		prefix := a.cfg.RedisPrefix
		s, err := redisstore.New(a.rdb, redisstore.WithKeyPrefix(prefix))
		if err != nil {
			return fmt.Errorf("HUB_REDIS_PREFIX: %w", err)
		}
		pt.mode, revStore = "redis", s
		pt.ring, err = previewsec.NewKeyRing(s, ringOpts...)
		if err != nil {
			return err
		}
	default:
		s, mode, err := a.previewDBStore()
		if err != nil {
			return err
		}
		revStore = s
		if len(cfg.Secret) > 0 {
			pt.mode = "derived"
			pt.ring, err = previewsec.NewDerivedKeyRing(cfg.Secret, ringOpts...)
		} else {
			pt.mode = mode
			pt.ring, err = previewsec.NewKeyRing(s, ringOpts...)
		}
		if err != nil {
			return err
		}
	}
	if pt.revs, err = previewsec.NewRevocationList(revStore, revOpts...); err != nil {
		return err
	}
	if pt.issuer, err = previewsec.NewIssuer(pt.ring, previewsec.WithDefaultTTL(cfg.TTL),
		previewsec.WithClock(clock), previewsec.WithLogger(a.log), previewsec.WithRegisterer(a.reg)); err != nil {
		return err
	}
	if pt.verifier, err = previewsec.NewVerifier(pt.ring, previewsec.WithRevocations(pt.revs), previewsec.WithMaxTokenLength(previewTokenMaxLen),
		previewsec.WithClock(clock), previewsec.WithLogger(a.log), previewsec.WithRegisterer(a.reg)); err != nil {
		return err
	}
	if pt.auth, err = previewsec.RequirePreviewToken(pt.verifier,
		previewsec.WithPreviewOwner(a.previewOwner),
		previewsec.WithSecureCookieFunc(previewsec.SecureFromConnection(a.cfg.TrustedProxies...)),
		previewsec.WithLogger(a.log)); err != nil {
		return err
	}

	// Fail fast on an unreachable store, then keep keys and revocations
	// fresh in the background.
	if err := pt.ring.Refresh(ctx); err != nil {
		return fmt.Errorf("preview tokens: %w", err)
	}
	if err := pt.revs.Refresh(ctx); err != nil {
		return fmt.Errorf("preview tokens: %w", err)
	}
	bg := context.WithoutCancel(ctx)
	if err := pt.ring.Start(bg); err != nil {
		return err
	}
	if err := pt.revs.Start(bg); err != nil {
		_ = pt.ring.Close(bg)
		return err
	}
	a.previewTokenFeature = pt
	a.onClose(func(ctx context.Context) error {
		return errors.Join(pt.revs.Close(ctx), pt.ring.Close(ctx))
	})
	a.log.Info("preview tokens ready", "keys", pt.mode, "rotation", cfg.Rotation.String(), "max_ttl", cfg.MaxTTL.String())
	return nil
}

// previewOwner tells the middleware which tenant owns a preview.
func (a *app) previewOwner(ctx context.Context, previewID string) (string, bool, error) {
	rec, found, err := a.lookupPreview(ctx, previewID)
	if err != nil || !found {
		return "", found, err
	}
	return rec.TenantID, true, nil
}

// issuePreviewToken mints a preview token for p on rec with the default
// TTL. p's tenant must own rec. POST /api/v1/previews calls it.
func (a *app) issuePreviewToken(ctx context.Context, p principal, rec previewRecord) (token string, expiresAt time.Time, kid string, err error) {
	return a.issuePreviewTokenTTL(ctx, p, rec, 0)
}

func (a *app) issuePreviewTokenTTL(ctx context.Context, p principal, rec previewRecord, ttl time.Duration) (string, time.Time, string, error) {
	pt := a.previewTokens()
	if pt == nil {
		return "", time.Time{}, "", errPreviewTokensOff
	}
	if rec.TenantID != p.TenantID {
		return "", time.Time{}, "", errPreviewOfOtherTenant
	}
	tok, exp, kid, err := pt.issuer.Mint(ctx, previewsec.Grant{
		UserID: p.UserID, TenantID: p.TenantID, PreviewID: rec.ID, SystemID: rec.SystemID, Device: rec.DevicePreset,
	}, ttl)
	if err == nil && len(tok) > previewTokenMaxLen {
		return "", time.Time{}, "", fmt.Errorf("%w (%d > %d bytes)", errPreviewTokenTooLong, len(tok), previewTokenMaxLen)
	}
	return tok, exp, kid, err
}

// previewAccess is what POST /api/v1/previews adds to its response. Its
// fields are omitted when minting failed and in the preview.created event,
// which every stream of the tenant receives.
type previewAccess struct {
	Token     string `json:"token,omitempty"`
	ExpiresAt string `json:"expires_at,omitempty"`
	URL       string `json:"url,omitempty"`
}

// previewAccessFor mints a token for p on rec (issuePreviewToken) and
// returns the response fields token, expires_at (RFC 3339) and url
// (/preview/{id}/).
func (a *app) previewAccessFor(ctx context.Context, p principal, rec previewRecord) (previewAccess, error) {
	tok, exp, _, err := a.issuePreviewToken(ctx, p, rec)
	if err != nil {
		return previewAccess{}, err
	}
	return previewAccess{Token: tok, ExpiresAt: exp.UTC().Format(time.RFC3339), URL: "/preview/" + url.PathEscape(rec.ID) + "/"}, nil
}

// revokePreviewTokens revokes every token issued so far for previewID.
// DELETE /api/v1/previews/{id} calls it.
func (a *app) revokePreviewTokens(ctx context.Context, previewID string) error {
	pt := a.previewTokens()
	if pt == nil {
		return errPreviewTokensOff
	}
	return pt.revs.RevokePreview(ctx, previewID)
}

func (a *app) previewTokensRoutes() []route {
	return []route{
		{Method: http.MethodPost, Pattern: "/api/v1/preview-security/jwt", Access: user, Handler: http.HandlerFunc(a.handleMintPreviewJWT)},
		// Public for the hub's bearer auth: RequirePreviewToken authenticates.
		{Method: http.MethodGet, Pattern: "/preview/{preview_id}/", Access: public, Handler: a.previewPageHandler()},
	}
}

type mintPreviewJWTRequest struct {
	PreviewID    string `json:"preview_id"`
	SystemID     string `json:"system_id"`
	DevicePreset string `json:"device_preset"`
	TTLMinutes   *int   `json:"ttl_minutes"`
}

// validate requires preview_id, system_id and device_preset (400
// missing_field), then checks system_id and device_preset as POST
// /api/v1/previews does (400 invalid_body).
func (req *mintPreviewJWTRequest) validate() error {
	var missing missingFieldsError
	for _, f := range []struct{ name, v string }{{"preview_id", req.PreviewID}, {"system_id", req.SystemID}, {"device_preset", req.DevicePreset}} {
		if f.v == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return missing
	}
	return validPreviewTarget(req.SystemID, req.DevicePreset)
}

// missingFieldsError names the required fields a body lacks: 400
// missing_field with the fields member.
type missingFieldsError []string

func (e missingFieldsError) Error() string {
	return "required fields are missing: " + strings.Join(e, ", ")
}

func (e missingFieldsError) problem() hardening.Problem {
	return hardening.NewProblem(http.StatusBadRequest, "missing_field", "required fields are missing").With("fields", []string(e))
}

type mintPreviewJWTResponse struct {
	Token     string `json:"token"`
	ExpiresAt string `json:"expires_at"`
	KID       string `json:"kid"`
}

// handleMintPreviewJWT serves POST /api/v1/preview-security/jwt. Tenant and
// user come from the caller's bearer token, never from the body.
func (a *app) handleMintPreviewJWT(w http.ResponseWriter, r *http.Request) {
	p, _ := principalFrom(r.Context())
	pt := a.previewTokens()
	if pt == nil {
		hardening.WriteProblem(w, r, hardening.NewProblem(http.StatusServiceUnavailable, "preview_tokens_unavailable", "preview tokens are not configured"))
		return
	}
	var req mintPreviewJWTRequest
	if !decodeJSON(w, r, &req) { // validate: required fields, system_id and device_preset
		return
	}
	maxMinutes := int(pt.issuer.MaxTTL() / time.Minute)
	var ttl time.Duration
	if req.TTLMinutes != nil {
		switch n := *req.TTLMinutes; {
		case n <= 0:
			hardening.WriteProblem(w, r, hardening.NewProblem(http.StatusBadRequest, "invalid_ttl", "ttl_minutes must be positive").With("limit", maxMinutes))
			return
		case n > maxMinutes:
			hardening.WriteProblem(w, r, hardening.NewProblem(http.StatusBadRequest, "ttl_too_long",
				fmt.Sprintf("ttl_minutes may be at most %d", maxMinutes)).With("limit", maxMinutes).With("current", n))
			return
		default:
			ttl = time.Duration(n) * time.Minute
		}
	}
	rec, found, err := a.lookupPreview(r.Context(), req.PreviewID)
	if err != nil {
		a.log.ErrorContext(r.Context(), "preview lookup failed", "err", err)
		hardening.WriteProblem(w, r, hardening.NewProblem(http.StatusServiceUnavailable, "db_unavailable", "the preview could not be looked up"))
		return
	}
	if !found {
		hardening.WriteProblem(w, r, hardening.NewProblem(http.StatusNotFound, "not_found", "no such preview"))
		return
	}
	if rec.TenantID != p.TenantID {
		a.log.WarnContext(r.Context(), "preview token refused: preview of another tenant",
			"user", p.UserID, "tenant", p.TenantID, "preview", rec.ID)
		hardening.WriteProblem(w, r, hardening.NewProblem(http.StatusForbidden, "forbidden", "the preview belongs to another tenant"))
		return
	}
	// The preview record is the authority for the system; the device preset
	// is the caller's choice of view.
	if rec.SystemID == "" {
		rec.SystemID = req.SystemID
	}
	rec.DevicePreset = req.DevicePreset
	tok, exp, kid, err := a.issuePreviewTokenTTL(r.Context(), p, rec, ttl)
	if err != nil {
		if errors.Is(err, previewsec.ErrTTLTooLong) {
			hardening.WriteProblem(w, r, hardening.NewProblem(http.StatusBadRequest, "ttl_too_long", "ttl_minutes is over the maximum").With("limit", maxMinutes))
			return
		}
		if errors.Is(err, errPreviewTokenTooLong) {
			a.log.WarnContext(r.Context(), "preview token refused: over the verifier's length cap", "user_len", len(p.UserID), "err", err)
			hardening.WriteProblem(w, r, hardening.NewProblem(http.StatusBadRequest, "preview_token_too_long",
				fmt.Sprintf("the preview token for this caller would be longer than the %d bytes the verifier accepts", previewTokenMaxLen)).With("limit", previewTokenMaxLen))
			return
		}
		a.log.ErrorContext(r.Context(), "preview token mint failed", "err", err)
		hardening.WriteProblem(w, r, hardening.Problem{Status: http.StatusServiceUnavailable, Reason: "preview_tokens_unavailable",
			Detail: "preview tokens cannot be issued right now", RetryAfter: time.Second})
		return
	}
	writeJSON(w, http.StatusOK, mintPreviewJWTResponse{Token: tok, ExpiresAt: exp.UTC().Format(time.RFC3339), KID: kid})
}

var previewPage = template.Must(template.New("preview").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Preview {{.ID}}</title></head>
<body>
<h1>Preview {{.ID}}</h1>
<p>System <code>{{.SystemID}}</code>, device <code>{{.Device}}</code>, tenant <code>{{.TenantID}}</code>.</p>
<p>Path <code>{{.Path}}</code>. Access expires at {{.Expires}}.</p>
</body></html>
`))

// previewPageHandler serves a small page for every path under
// /preview/{preview_id}/ behind RequirePreviewToken; a real deployment
// proxies to the preview's container here.
func (a *app) previewPageHandler() http.Handler {
	page := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, ok := previewsec.ClaimsFromContext(r.Context())
		if !ok {
			hardening.WriteProblem(w, r, hardening.NewProblem(http.StatusUnauthorized, "preview_token_required", "a valid preview token is required"))
			return
		}
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Cache-Control", "no-store")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'self'")
		w.WriteHeader(http.StatusOK)
		_ = previewPage.Execute(w, map[string]string{
			"ID": c.PreviewID, "SystemID": c.SystemID, "Device": c.Device, "TenantID": c.TenantID,
			"Path": r.URL.Path, "Expires": c.ExpiresAt.UTC().Format(time.RFC3339),
		})
	})
	pt := a.previewTokens()
	if pt == nil {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hardening.WriteProblem(w, r, hardening.NewProblem(http.StatusServiceUnavailable, "preview_tokens_unavailable", "preview tokens are not configured"))
		})
	}
	return pt.auth.Handler(page)
}
