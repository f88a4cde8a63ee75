package previewsec

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/systembuilderhub/hardening"
	"github.com/systembuilderhub/hardening/internal/ctxval"
)

// Defaults of RequirePreviewToken.
const (
	// DefaultPreviewPathPrefix is the path prefix of preview routes; the
	// preview id is the path segment after it.
	DefaultPreviewPathPrefix = "/preview/"
	// DefaultCookieName is the cookie carrying the preview token.
	DefaultCookieName = "preview_token"
	// QueryParam is the query parameter a token may arrive in once; it is
	// exchanged for the cookie.
	QueryParam = "preview_token"
)

// PreviewOwnerFunc returns the tenant owning previewID. found=false means
// no such preview; an error means the lookup failed (answered with 503).
type PreviewOwnerFunc func(ctx context.Context, previewID string) (tenantID string, found bool, err error)

// PreviewAuth is the middleware built by RequirePreviewToken.
type PreviewAuth struct {
	v       *Verifier
	prefix  string
	idFunc  func(*http.Request) string
	owner   PreviewOwnerFunc
	cookie  string
	secure  func(*http.Request) bool
	forward bool
	log     *slog.Logger
	onError hardening.ErrorHandler
}

// WithPreviewPathPrefix sets the prefix before the preview id in the path
// (default DefaultPreviewPathPrefix). It must start and end with "/".
func WithPreviewPathPrefix(prefix string) MiddlewareOption {
	return middlewareOption(func(m *PreviewAuth) { m.prefix = prefix })
}

// WithPreviewIDFunc overrides how the preview id is read from a request
// (default: r.PathValue("preview_id"), else the path segment after the
// prefix). An empty id is answered with 404.
func WithPreviewIDFunc(f func(*http.Request) string) MiddlewareOption {
	return middlewareOption(func(m *PreviewAuth) { m.idFunc = f })
}

// WithPreviewOwner makes the middleware check that the token's tenant owns
// the preview, as f reports it (403 otherwise, 404 when the preview does
// not exist, 503 when f fails). It replaces the default owner check, which
// reads the caller from the request context: when a hardening.Caller is
// there (hardening.RequireCaller in front of the preview routes), the
// token's tenant must be the caller's Tenant (403 otherwise; a caller
// without a tenant matches no token). Without this option and without a
// caller, only the preview id binding is checked. nil means the default.
func WithPreviewOwner(f PreviewOwnerFunc) MiddlewareOption {
	return middlewareOption(func(m *PreviewAuth) { m.owner = f })
}

// WithCookieName sets the preview cookie's name (default DefaultCookieName).
func WithCookieName(name string) MiddlewareOption {
	return middlewareOption(func(m *PreviewAuth) { m.cookie = name })
}

// WithSecureCookie sets the cookie's Secure attribute (default true). Turn
// it off only for plain-HTTP local development.
func WithSecureCookie(secure bool) MiddlewareOption {
	return middlewareOption(func(m *PreviewAuth) { m.secure = func(*http.Request) bool { return secure } })
}

// WithSecureCookieFunc decides the cookie's Secure attribute per request,
// for example SecureFromConnection(trustedProxies...).
func WithSecureCookieFunc(f func(*http.Request) bool) MiddlewareOption {
	return middlewareOption(func(m *PreviewAuth) { m.secure = f })
}

// WithTokenForwarding keeps the token's Authorization header and cookie on
// the request passed to the next handler. By default they are removed so
// the previewed app never sees the token.
func WithTokenForwarding(forward bool) MiddlewareOption {
	return middlewareOption(func(m *PreviewAuth) { m.forward = forward })
}

// RequirePreviewToken returns middleware that lets a request through to a
// preview only with a valid preview token for that preview.
//
// The token is read from "Authorization: Bearer" when that header is
// present (and from nowhere else then), else from the preview_token query
// parameter and the preview cookie. A query token that grants access to
// this preview wins over whatever cookie is present: a fresh link must work
// despite a stale cookie or one holding another preview's token (a
// previewed app can set a cookie for the whole prefix). Otherwise the
// cookie is used, and the query token is ignored; when the cookie is itself
// invalid too, the query token's rejection is the answer. A valid query
// token is exchanged for an HttpOnly, SameSite=Lax cookie scoped to the
// preview's path, replacing the one present, and answered with a 303 to
// the same URL without the token, so it does not linger in history, logs
// or Referer.
//
// The token's pid must equal the preview id of the path and its tid the
// owning tenant (WithPreviewOwner, else the hardening.Caller in the
// context when there is one); otherwise 403. Any other failure is a 401
// problem with WWW-Authenticate: Bearer realm="preview" and one generic
// message; the reason is logged and counted, never returned. A store
// failure is a 503. Every refusal is a *RejectionError passed to the error
// handler (WithErrorHandler; default hardening.WriteError). Verified
// claims are in the request context (ClaimsFromContext).
//
// Preview tokens have audience "preview": mount this middleware on preview
// routes only, and make every other route verify its own audience, so a
// preview token never authenticates an API call.
func RequirePreviewToken(v *Verifier, opts ...MiddlewareOption) (*PreviewAuth, error) {
	if v == nil {
		return nil, errors.New("previewsec: RequirePreviewToken needs a Verifier")
	}
	m := &PreviewAuth{v: v, prefix: DefaultPreviewPathPrefix, cookie: DefaultCookieName,
		secure: func(*http.Request) bool { return true }, onError: hardening.WriteError}
	m.idFunc = m.defaultPreviewID
	for _, o := range opts {
		if o != nil {
			o.applyMiddleware(m)
		}
	}
	if err := m.check(); err != nil {
		return nil, err
	}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	return m, nil
}

// check reports the first invalid setting of m.
func (m *PreviewAuth) check() error {
	switch {
	case !strings.HasPrefix(m.prefix, "/") || !strings.HasSuffix(m.prefix, "/"):
		return errors.New(`previewsec: preview path prefix must start and end with "/"`)
	case m.idFunc == nil:
		return errors.New("previewsec: nil preview id func")
	case m.cookie == "" || strings.ContainsAny(m.cookie, "=;, \t"):
		return errors.New("previewsec: invalid cookie name")
	case m.secure == nil:
		return errors.New("previewsec: nil secure cookie func")
	case m.onError == nil:
		return errors.New("previewsec: nil error handler")
	}
	return nil
}

type tokenSource int

const (
	tokenFromNone tokenSource = iota
	tokenFromHeader
	tokenFromCookie
	tokenFromQuery
)

// String names the source for logs.
func (s tokenSource) String() string {
	return [...]string{"none", "header", "cookie", "query"}[s]
}

// Handler wraps next.
func (m *PreviewAuth) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pid := m.previewID(r)
		if pid == "" {
			m.onError(w, r, &RejectionError{Status: http.StatusNotFound, Reason: ProblemNotFound, Cause: "not_found"})
			return
		}
		token, src := m.token(r)
		if src == tokenFromNone {
			m.v.reject(reasonMissing)
			m.unauthorized(w, r, pid, reasonMissing, src, nil)
			return
		}
		var v verdict
		if q := tokenFromQueryOf(r); src == tokenFromCookie && q != "" {
			token, src, v = m.judgeLinkAndCookie(r, pid, q, token)
		} else {
			v = m.judge(r, pid, token)
		}
		m.answer(w, r, next, pid, token, src, v)
	})
}

// previewID reads the preview id of r.
func (m *PreviewAuth) previewID(r *http.Request) string { return m.idFunc(r) }

// defaultPreviewID is the preview id of r without WithPreviewIDFunc.
func (m *PreviewAuth) defaultPreviewID(r *http.Request) string {
	if id := r.PathValue("preview_id"); id != "" {
		return id
	}
	rest, ok := strings.CutPrefix(r.URL.Path, m.prefix)
	if !ok {
		return ""
	}
	id, _, _ := strings.Cut(rest, "/")
	if id == "." || id == ".." {
		return ""
	}
	return id
}

// token finds the request's token and where it came from.
func (m *PreviewAuth) token(r *http.Request) (string, tokenSource) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, _ := strings.Cut(h, " ")
		if !strings.EqualFold(scheme, "Bearer") {
			return "", tokenFromHeader // present but unusable: do not fall back
		}
		return strings.TrimSpace(tok), tokenFromHeader
	}
	if c, err := r.Cookie(m.cookie); err == nil && c.Value != "" {
		return c.Value, tokenFromCookie
	}
	if tok := tokenFromQueryOf(r); tok != "" {
		return tok, tokenFromQuery
	}
	return "", tokenFromNone
}

func tokenFromQueryOf(r *http.Request) string {
	if r.URL.RawQuery == "" {
		return ""
	}
	return r.URL.Query().Get(QueryParam)
}

// cookiePath is the path the preview cookie is scoped to.
func (m *PreviewAuth) cookiePath(pid string) string {
	return m.prefix + url.PathEscape(pid) + "/"
}

// exchange sets the cookie from a valid query token and redirects to the
// same URL without it.
func (m *PreviewAuth) exchange(w http.ResponseWriter, r *http.Request, pid, token string, c Claims) {
	maxAge := int(c.ExpiresAt.Sub(m.v.now()) / time.Second)
	http.SetCookie(w, &http.Cookie{
		Name: m.cookie, Value: token, Path: m.cookiePath(pid),
		MaxAge: max(maxAge, 1), HttpOnly: true, Secure: m.secure(r), SameSite: http.SameSiteLaxMode,
	})
	q := r.URL.Query()
	q.Del(QueryParam)
	u := url.URL{Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: q.Encode()}
	h := w.Header()
	h.Set("Location", u.String())
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(http.StatusSeeOther)
}

func (m *PreviewAuth) unauthorized(w http.ResponseWriter, r *http.Request, pid, reason string, src tokenSource, err error) {
	attrs := []slog.Attr{slog.String("pid", pid), slog.String("reason", reason), slog.String("source", src.String())}
	if err != nil {
		attrs = append(attrs, slog.String("err", err.Error()))
	}
	m.log.LogAttrs(r.Context(), slog.LevelWarn, "previewsec: preview token rejected", attrs...)
	if src == tokenFromCookie {
		// Drop the bad cookie so the browser stops sending it.
		http.SetCookie(w, &http.Cookie{Name: m.cookie, Value: "", Path: m.cookiePath(pid), MaxAge: -1,
			HttpOnly: true, Secure: m.secure(r), SameSite: http.SameSiteLaxMode})
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="preview"`)
	m.onError(w, r, &RejectionError{Status: http.StatusUnauthorized, Reason: ProblemTokenRequired,
		Cause: reason, PreviewID: pid, err: err})
}

func (m *PreviewAuth) forbidden(w http.ResponseWriter, r *http.Request, pid, reason string, c Claims) {
	m.v.reject(reason)
	m.log.LogAttrs(r.Context(), slog.LevelWarn, "previewsec: preview token for another preview or tenant",
		slog.String("pid", pid), slog.String("reason", reason),
		slog.String("token_pid", c.PreviewID), slog.String("token_tid", c.TenantID), slog.String("jti", c.ID))
	m.onError(w, r, &RejectionError{Status: http.StatusForbidden, Reason: ProblemForbidden, Cause: reason, PreviewID: pid})
}

// tokenStripCredentials returns a copy of h without the credential the
// token came from.
func tokenStripCredentials(h http.Header, src tokenSource, cookieName string) http.Header {
	out := h.Clone()
	switch src {
	case tokenFromHeader:
		out.Del("Authorization")
	case tokenFromCookie:
		var keep []string
		for _, line := range out.Values("Cookie") {
			for part := range strings.SplitSeq(line, ";") {
				p := strings.TrimSpace(part)
				if p == "" {
					continue
				}
				if name, _, _ := strings.Cut(p, "="); name == cookieName {
					continue
				}
				keep = append(keep, p)
			}
		}
		out.Del("Cookie")
		if len(keep) > 0 {
			out.Set("Cookie", strings.Join(keep, "; "))
		}
	}
	return out
}

type tokenCtxKey struct{ name string }

var tokenClaimsCtxKey = &tokenCtxKey{"previewsec claims"}

// ClaimsFromContext returns the verified claims RequirePreviewToken put in
// ctx.
func ClaimsFromContext(ctx context.Context) (Claims, bool) {
	c, ok := ctxval.From[Claims](ctx, tokenClaimsCtxKey)
	if !ok {
		return Claims{}, false
	}
	return *c, true
}

// NewContextWithClaims returns ctx carrying c, as RequirePreviewToken does
// (for tests of handlers behind it).
func NewContextWithClaims(ctx context.Context, c Claims) context.Context {
	return ctxval.With(ctx, tokenClaimsCtxKey, "WithPreviewClaims", c)
}
