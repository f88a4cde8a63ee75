// Package egress decides which outbound destinations code may reach and
// enforces the decision when it connects: an SSRF guard for preview
// sandboxes and for any server that calls user-supplied URLs, such as
// webhooks.
//
// A Policy judges a destination (host and port) on the normalised host
// (NormalizeHost refuses every ambiguous form) and on every address it is
// or resolves to, against a denylist, the IANA special-purpose address
// registries (SpecialPurpose) and its mode: ModeAllowlist (the default;
// only allowlisted hosts and ports, an empty allowlist denies everything)
// or ModePublic (any public destination on the allowed ports, nothing
// internal). A Decision carries a stable reason code.
//
// A check alone is defeated by DNS rebinding, so the policy also dials:
// DialContext resolves once, decides on that answer and connects only to
// the addresses it checked, and its net.Dialer re-checks the IP of every
// connect. NewTransport and NewClient build on it: the client checks every
// dial and every redirect, and uses no proxy. Proxy is a CONNECT and
// absolute-form forward proxy for sandboxes that make their own calls; its
// refusals are *ProxyError values passed to its error handler
// (WithErrorHandler; default hardening.WriteError), and Close(ctx) drains
// its tunnels until ctx ends.
//
// NewPolicy takes PolicyOptions and NewProxy ProxyOptions; WithLogger and
// WithRegisterer fit both. Configuration comes from the application:
// ParseMode, ParseAllowlist and ParseDenylist parse configured values. The
// package reads no environment and does not import previewsec or
// previewsec/container.
//
// See docs/previewsec-egress.md.
package egress
