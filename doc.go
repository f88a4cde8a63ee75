// Package hardening is a kit of independent packages that add production
// hardening to a Go service's HTTP API by wrapping its http.Handler chain.
//
// Each package does one job, exposes net/http middleware or handlers, and
// keeps its state behind a small store interface with memory, SQLite
// (sqlx + mattn/go-sqlite3) and Redis (go-redis/v9) implementations:
//
//   - previewsec: short-lived signed preview tokens with a rotating key ring
//     shared by all replicas, revocation, and preview-auth middleware;
//     previewsec/egress: an SSRF guard enforced at dial time (an allowlist
//     for preview sandboxes, or any public destination for webhooks), with
//     an http.Client and a CONNECT proxy; previewsec/container: container
//     limit verification.
//   - tenancy: the tenant in the request context, tenant-scoped data access,
//     named per-tenant quotas a service declares (rates, concurrency limits,
//     budgets) with 429/402 problem responses and an audited change log.
//   - idempotency: Idempotency-Key middleware with durable, cross-process
//     storage and replay.
//   - streamauth: authenticated SSE and WebSocket streams that end when their
//     credential expires, is revoked, or its tenant does not match.
//   - flags: feature flags with per-tenant overrides, an audit record for
//     every change, and an OpenFeature provider.
//   - migrate: the kit's SQL schema as embedded migrations, the startup check
//     and the readiness handler.
//
// The packages compose by wrapping: authentication (yours) puts a principal
// in the context; tenancy derives the tenant from it; idempotency scopes its
// records by that tenant and principal; quotas and flags read the tenant.
// Packages never import each other: the caller wires them with small
// functions. Every error response is RFC 9457 application/problem+json, and
// security decisions fail closed when a store is unreachable.
//
// A typical chain, outermost first:
//
//	mux := http.NewServeMux()
//	mux.Handle("POST /api/v1/previews", yourAuth(tenantMW.Handler(idem.Handler(createPreview))))
//
// The reference service in examples/hub composes every package; run it with
// `go run ./examples/hub`.
//
// This root package holds the small vocabulary the packages share and
// imports none of them: Caller, the verified identity the application
// states once (RequireCaller with its Authenticator) and every package reads
// from the context; Problem, the RFC 9457 answer; Error, the interface
// of every typed error the kit answers with (find it with errors.As);
// ErrorHandler, the hook that answers them; and ProblemWriter, the default
// ErrorHandler, whose TypeBase points problem types at your documentation.
package hardening
