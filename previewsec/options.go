package previewsec

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/systembuilderhub/hardening"
	"github.com/systembuilderhub/hardening/internal/promreg"
)

// KeyRingOption configures NewKeyRing and NewDerivedKeyRing.
//
// Each constructor of the package takes its own option type: KeyRingOption
// (NewKeyRing, NewDerivedKeyRing), IssuerOption (NewIssuer),
// VerifierOption (NewVerifier), RevocationOption (NewRevocationList) and
// MiddlewareOption (RequirePreviewToken). An option that only one
// constructor takes returns that type. The options several constructors
// take have one plain name and return a type that is an option of each of
// them, and of no other, so an option that does not fit a constructor
// does not compile:
//
//   - WithLogger: every constructor (LoggerOption);
//   - WithClock: the key ring, issuer, verifier and revocation list
//     (ClockOption);
//   - WithRegisterer: the issuer and the verifier (RegistererOption).
//
// An option only records its value; the constructor checks the result and
// reports an invalid value as an error (never at request time). A nil
// option is ignored.
type KeyRingOption interface{ applyKeyRing(*KeyRing) }

// IssuerOption configures NewIssuer.
type IssuerOption interface{ applyIssuer(*Issuer) }

// VerifierOption configures NewVerifier.
type VerifierOption interface{ applyVerifier(*Verifier) }

// RevocationOption configures NewRevocationList.
type RevocationOption interface{ applyRevocation(*RevocationList) }

// MiddlewareOption configures RequirePreviewToken.
type MiddlewareOption interface{ applyMiddleware(*PreviewAuth) }

type (
	keyRingOption    func(*KeyRing)
	issuerOption     func(*Issuer)
	verifierOption   func(*Verifier)
	revocationOption func(*RevocationList)
	middlewareOption func(*PreviewAuth)
)

func (f keyRingOption) applyKeyRing(r *KeyRing)              { f(r) }
func (f issuerOption) applyIssuer(i *Issuer)                 { f(i) }
func (f verifierOption) applyVerifier(v *Verifier)           { f(v) }
func (f revocationOption) applyRevocation(l *RevocationList) { f(l) }
func (f middlewareOption) applyMiddleware(m *PreviewAuth)    { f(m) }

// LoggerOption is the option WithLogger returns: a KeyRingOption,
// IssuerOption, VerifierOption, RevocationOption and MiddlewareOption.
type LoggerOption struct{ log *slog.Logger }

// WithLogger sets the logger of any constructor of the package (nil, the
// default, discards): key rotations and store failures (key ring), minted
// tokens at Debug (issuer), revocations and an unavailable store
// (revocation list), rejected requests with the reason (middleware).
func WithLogger(l *slog.Logger) LoggerOption { return LoggerOption{log: l} }

func (o LoggerOption) applyKeyRing(r *KeyRing)           { r.log = o.log }
func (o LoggerOption) applyIssuer(i *Issuer)             { i.log = o.log }
func (o LoggerOption) applyVerifier(v *Verifier)         { v.log = o.log }
func (o LoggerOption) applyRevocation(l *RevocationList) { l.log = o.log }
func (o LoggerOption) applyMiddleware(m *PreviewAuth)    { m.log = o.log }

// ClockOption is the option WithClock returns: a KeyRingOption,
// IssuerOption, VerifierOption and RevocationOption.
type ClockOption struct{ now func() time.Time }

// WithClock sets the clock (default time.Now; the issuer and verifier
// default to their key ring's clock). nil is an error.
func WithClock(now func() time.Time) ClockOption { return ClockOption{now: now} }

func (o ClockOption) applyKeyRing(r *KeyRing)           { r.now = o.now }
func (o ClockOption) applyIssuer(i *Issuer)             { i.now = o.now }
func (o ClockOption) applyVerifier(v *Verifier)         { v.now = o.now }
func (o ClockOption) applyRevocation(l *RevocationList) { l.now = o.now }

// checkClock reports a nil clock (WithClock(nil)).
func checkClock(now func() time.Time) error {
	if now == nil {
		return errors.New("previewsec: nil clock")
	}
	return nil
}

// RegistererOption is the option WithRegisterer returns: an IssuerOption
// and a VerifierOption.
type RegistererOption struct{ reg prometheus.Registerer }

// WithRegisterer registers the constructor's metrics with reg (nil, the
// default, means none): hardening_previewsec_tokens_issued_total
// (issuer) and hardening_previewsec_token_rejections_total{reason}
// (verifier; reasons are the values of RejectionReason). Several issuers
// or verifiers on one registerer share the metric.
func WithRegisterer(reg prometheus.Registerer) RegistererOption {
	return RegistererOption{reg: reg}
}

func (o RegistererOption) applyIssuer(i *Issuer)     { i.reg = o.reg }
func (o RegistererOption) applyVerifier(v *Verifier) { v.reg = o.reg }

// WithErrorHandler sets how RequirePreviewToken answers a request it
// refuses (default hardening.WriteError, problem+json). The handler
// receives a *RejectionError (401, 403, 404 or 503); the headers the
// middleware sets first (WWW-Authenticate on a 401, the cookie deletion)
// are already on w. nil is an error.
func WithErrorHandler(h hardening.ErrorHandler) MiddlewareOption {
	return middlewareOption(func(m *PreviewAuth) { m.onError = h })
}

// issuedCounter registers the issuer's counter on reg (nil: none).
func issuedCounter(reg prometheus.Registerer) (prometheus.Counter, error) {
	if reg == nil {
		return nil, nil
	}
	c, err := promreg.Register(reg, prometheus.NewCounter(prometheus.CounterOpts{
		Name: "hardening_previewsec_tokens_issued_total",
		Help: "Preview tokens minted.",
	}))
	if err != nil {
		return nil, fmt.Errorf("previewsec: register metrics: %w", err)
	}
	return c, nil
}

// rejectionCounter registers the verifier's counter on reg (nil: none).
func rejectionCounter(reg prometheus.Registerer) (*prometheus.CounterVec, error) {
	if reg == nil {
		return nil, nil
	}
	c, err := promreg.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hardening_previewsec_token_rejections_total",
		Help: "Preview tokens rejected, by reason.",
	}, []string{"reason"}))
	if err != nil {
		return nil, fmt.Errorf("previewsec: register metrics: %w", err)
	}
	return c, nil
}
