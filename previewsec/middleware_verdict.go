package previewsec

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/systembuilderhub/hardening"
)

// verdict is RequirePreviewToken's decision on one token for one preview.
type verdict struct {
	claims   Claims
	err      error  // Verify's error: 503 when ErrUnavailable, else 401
	deny     string // reasonWrongPreview or reasonWrongTenant: 403
	notFound bool   // the owner lookup found no such preview: 404
	ownerErr error  // the owner lookup failed: 503
}

// fits reports whether the token grants access to the preview.
func (v verdict) fits() bool {
	return v.err == nil && v.deny == "" && !v.notFound && v.ownerErr == nil
}

// invalid reports whether the token itself was rejected (a 401).
func (v verdict) invalid() bool {
	return v.err != nil && !errors.Is(v.err, ErrUnavailable)
}

// judge verifies token and checks it against preview pid.
func (m *PreviewAuth) judge(r *http.Request, pid, token string) verdict {
	c, err := m.v.Verify(r.Context(), token)
	switch {
	case err != nil:
		return verdict{err: err}
	case c.PreviewID != pid:
		return verdict{claims: c, deny: reasonWrongPreview}
	case m.owner == nil:
		return m.judgeByCaller(r, c)
	}
	tenant, found, err := m.owner(r.Context(), pid)
	switch {
	case err != nil:
		return verdict{claims: c, ownerErr: err}
	case !found:
		return verdict{claims: c, notFound: true}
	case tenant != c.TenantID:
		return verdict{claims: c, deny: reasonWrongTenant}
	}
	return verdict{claims: c}
}

// judgeByCaller is the owner check without WithPreviewOwner: with a
// hardening.Caller in the context the token's tenant must be the
// caller's; without one only the preview id binding counts.
func (m *PreviewAuth) judgeByCaller(r *http.Request, c Claims) verdict {
	if caller, ok := hardening.CallerFrom(r.Context()); ok && (caller.Tenant == "" || caller.Tenant != c.TenantID) {
		return verdict{claims: c, deny: reasonWrongTenant}
	}
	return verdict{claims: c}
}

// judgeLinkAndCookie decides a request carrying both a query token (a fresh
// link) and the cookie. A query token that fits wins whatever the cookie
// holds, and replaces it on the 303: a cookie set for another preview (a
// previewed app can set one for the whole prefix) or a stale one must not
// lock the user out. Otherwise the cookie is used, unless it is itself
// invalid: then the query token's answer is given.
func (m *PreviewAuth) judgeLinkAndCookie(r *http.Request, pid, query, cookie string) (string, tokenSource, verdict) {
	qv := m.judge(r, pid, query)
	if qv.fits() || qv.notFound || qv.ownerErr != nil || errors.Is(qv.err, ErrUnavailable) {
		return query, tokenFromQuery, qv // the answer does not depend on the cookie
	}
	cv := m.judge(r, pid, cookie)
	if cv.invalid() {
		return query, tokenFromQuery, qv
	}
	m.log.LogAttrs(r.Context(), slog.LevelInfo, "previewsec: query token does not fit the preview, using the cookie",
		slog.String("pid", pid), slog.String("reason", qv.reason()))
	return cookie, tokenFromCookie, cv
}

// reason names why v does not fit, for logs.
func (v verdict) reason() string {
	switch {
	case v.err != nil:
		return RejectionReason(v.err)
	case v.deny != "":
		return v.deny
	case v.notFound:
		return "not_found"
	case v.ownerErr != nil:
		return reasonUnavailable
	}
	return ""
}

// answer writes the response for v, or passes the request on to next.
func (m *PreviewAuth) answer(w http.ResponseWriter, r *http.Request, next http.Handler, pid, token string, src tokenSource, v verdict) {
	switch {
	case errors.Is(v.err, ErrUnavailable):
		m.unavailable(w, r, pid, "previewsec: preview token check unavailable", reasonUnavailable, v.err)
	case v.err != nil:
		m.unauthorized(w, r, pid, RejectionReason(v.err), src, v.err)
	case v.deny != "":
		m.forbidden(w, r, pid, v.deny, v.claims)
	case v.ownerErr != nil:
		m.unavailable(w, r, pid, "previewsec: preview owner lookup failed", reasonUnavailable, v.ownerErr)
	case v.notFound:
		m.onError(w, r, &RejectionError{Status: http.StatusNotFound, Reason: ProblemNotFound, Cause: "not_found", PreviewID: pid})
	case src == tokenFromQuery:
		m.exchange(w, r, pid, token, v.claims)
	default:
		next.ServeHTTP(w, m.forwarded(r, src, v.claims))
	}
}

// forwarded is r as the previewed app sees it: claims in the context and,
// unless WithTokenForwarding, without the token's credential or an ignored
// query token.
func (m *PreviewAuth) forwarded(r *http.Request, src tokenSource, c Claims) *http.Request {
	r2 := r.WithContext(NewContextWithClaims(r.Context(), c))
	if m.forward {
		return r2
	}
	r2.Header = tokenStripCredentials(r.Header, src, m.cookie)
	if tokenFromQueryOf(r) != "" {
		u := *r.URL
		q := u.Query()
		q.Del(QueryParam)
		u.RawQuery = q.Encode()
		r2.URL = &u
		r2.RequestURI = u.RequestURI()
	}
	return r2
}

func (m *PreviewAuth) unavailable(w http.ResponseWriter, r *http.Request, pid, msg, cause string, err error) {
	m.log.LogAttrs(r.Context(), slog.LevelError, msg, slog.String("pid", pid), slog.String("err", err.Error()))
	m.onError(w, r, &RejectionError{Status: http.StatusServiceUnavailable, Reason: ProblemUnavailable,
		Cause: cause, PreviewID: pid, err: err})
}
