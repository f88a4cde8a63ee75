// Package egress decides which outbound destinations code may reach and
// enforces the decision when it connects: an SSRF guard for preview
// sandboxes and for any server that calls user-supplied URLs.
//
// A Policy judges a destination (host and port) on the normalised host
// name (NormalizeHost refuses every ambiguous form) and on every address
// the name resolves to, against a denylist, an allowlist with ports, and
// the IANA special-purpose address registries (SpecialPurpose). A Decision
// carries a stable reason code.
//
// A check alone is defeated by DNS rebinding, so the policy also dials:
// DialContext resolves once, decides on that answer and connects only to
// the addresses it checked, and its net.Dialer re-checks the IP of every
// connect. Transport and Client build on it; Proxy is a CONNECT and
// absolute-form forward proxy for sandboxes that make their own calls.
//
// Configuration comes from the application: ParseAllowlist and
// ParseDenylist turn comma lists into entries for WithAllow and WithDeny.
// The package reads no environment.
//
// See docs/previewsec-egress.md.
package egress
