package previewsec

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
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
// A nil option is ignored. Invalid values are reported by the constructor.
type KeyRingOption interface{ applyKeyRing(*KeyRing) error }

// IssuerOption configures NewIssuer.
type IssuerOption interface{ applyIssuer(*Issuer) error }

// VerifierOption configures NewVerifier.
type VerifierOption interface{ applyVerifier(*Verifier) error }

// RevocationOption configures NewRevocationList.
type RevocationOption interface {
	applyRevocation(*RevocationList) error
}

// MiddlewareOption configures RequirePreviewToken.
type MiddlewareOption interface{ applyMiddleware(*PreviewAuth) error }

type (
	keyRingOption    func(*KeyRing) error
	issuerOption     func(*Issuer) error
	verifierOption   func(*Verifier) error
	revocationOption func(*RevocationList) error
	middlewareOption func(*PreviewAuth) error
)

func (f keyRingOption) applyKeyRing(r *KeyRing) error              { return f(r) }
func (f issuerOption) applyIssuer(i *Issuer) error                 { return f(i) }
func (f verifierOption) applyVerifier(v *Verifier) error           { return f(v) }
func (f revocationOption) applyRevocation(l *RevocationList) error { return f(l) }
func (f middlewareOption) applyMiddleware(m *PreviewAuth) error    { return f(m) }

// LoggerOption is the option WithLogger returns: a KeyRingOption,
// IssuerOption, VerifierOption, RevocationOption and MiddlewareOption.
type LoggerOption struct{ log *slog.Logger }

// WithLogger sets the logger of any constructor of the package (nil, the
// default, discards): key rotations and store failures (key ring), minted
// tokens at Debug (issuer), revocations and an unavailable store
// (revocation list), rejected requests with the reason (middleware).
func WithLogger(l *slog.Logger) LoggerOption { return LoggerOption{log: l} }

func (o LoggerOption) applyKeyRing(r *KeyRing) error           { r.log = o.log; return nil }
func (o LoggerOption) applyIssuer(i *Issuer) error             { i.log = o.log; return nil }
func (o LoggerOption) applyVerifier(v *Verifier) error         { v.log = o.log; return nil }
func (o LoggerOption) applyRevocation(l *RevocationList) error { l.log = o.log; return nil }
func (o LoggerOption) applyMiddleware(m *PreviewAuth) error    { m.log = o.log; return nil }

// ClockOption is the option WithClock returns: a KeyRingOption,
// IssuerOption, VerifierOption and RevocationOption.
type ClockOption struct{ now func() time.Time }

// WithClock sets the clock (default time.Now; the issuer and verifier
// default to their key ring's clock). nil is an error.
func WithClock(now func() time.Time) ClockOption { return ClockOption{now: now} }

func (o ClockOption) check() error {
	if o.now == nil {
		return errors.New("previewsec: nil clock")
	}
	return nil
}

func (o ClockOption) applyKeyRing(r *KeyRing) error { r.now = o.now; return o.check() }
func (o ClockOption) applyIssuer(i *Issuer) error   { i.now = o.now; return o.check() }
func (o ClockOption) applyVerifier(v *Verifier) error {
	v.now = o.now
	return o.check()
}
func (o ClockOption) applyRevocation(l *RevocationList) error { l.now = o.now; return o.check() }

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

func (o RegistererOption) applyIssuer(i *Issuer) error {
	if o.reg == nil {
		return nil
	}
	c, err := registerTokenCollector(o.reg, prometheus.NewCounter(prometheus.CounterOpts{
		Name: "hardening_previewsec_tokens_issued_total",
		Help: "Preview tokens minted.",
	}))
	if err != nil {
		return fmt.Errorf("previewsec: register metrics: %w", err)
	}
	i.issued = c
	return nil
}

func (o RegistererOption) applyVerifier(v *Verifier) error {
	if o.reg == nil {
		return nil
	}
	c, err := registerTokenCollector(o.reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hardening_previewsec_token_rejections_total",
		Help: "Preview tokens rejected, by reason.",
	}, []string{"reason"}))
	if err != nil {
		return fmt.Errorf("previewsec: register metrics: %w", err)
	}
	v.rejections = c
	return nil
}

// registerTokenCollector registers c with reg, or returns the collector of
// the same kind already registered.
func registerTokenCollector[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing, nil
			}
		}
		return c, err
	}
	return c, nil
}
