// Package streamauth makes long-lived HTTP streams (Server-Sent Events and
// WebSockets) live exactly as long as the credential and the tenant that
// opened them allow.
//
// A request is turned into a [hardening.Caller] by a
// [hardening.Authenticator], the same value a service passes to
// [hardening.RequireCaller] for its REST routes; the kit ships
// [JWTAuthenticator] for HS256 bearer tokens read from the Authorization
// header, a cookie or an access_token query parameter (browsers' EventSource
// and WebSocket cannot set headers; a query token is redacted before the
// request reaches the handler and never logged), with claim names mapped by
// [WithSubjectClaim], [WithTenantClaim] and [WithRolesClaim]. The stream
// handler's context carries the caller for [hardening.CallerFrom].
//
// [SSE] and [WebSocket] wrap a stream handler. Authentication failures are
// answered with 401 problem+json before any stream byte (or before the
// WebSocket upgrade), so a browser EventSource stops reconnecting. An
// accepted stream is recorded in a [Registry], which arms one timer per
// stream at the credential's expiry and cancels the handler's context when
// the stream expires, is revoked ([Registry.Revoke]), sees another tenant's
// event, or the client goes away. SSE streams then end with a final
// "event: auth_expired" (or auth_revoked / tenant_mismatch); WebSockets close
// with 4001 token_expired or 4003 revoked / tenant_mismatch, and WebSocket
// clients may extend their stream in-band with
// {"type":"refresh","token":"..."} (checked as opening a stream is).
//
// Every write to a stream has a deadline ([WithWriteTimeout], default 10s):
// a client that stops reading is dropped (write_timeout), and a dropped
// stream's connection is closed within that bound whether or not its client
// reads. A dropped stream counts toward the per-user and per-tenant limits
// until its connection is closed.
//
// Across replicas, package streamauth/redisbus carries revocations and
// events over Redis pub/sub: pass it to [WithBroadcaster] and start it on the
// registry. [Registry.Publish] and [Registry.Broadcast] then reach the
// streams of every replica once; [Registry.PublishLocal] and
// [Registry.BroadcastLocal] stay on this one.
// A [RevocationStore] ([WithRevocationStore]: [NewMemoryRevocationStore],
// streamauth/sqlitestore, streamauth/redisstore, streamauth/postgresstore)
// keeps revocations across restarts; streamauth/storetest is its
// conformance suite.
//
// Every refusal (401, 403, 426, 429, 503) is a [*RefusedError], a
// [hardening.Error] handed to the handler's ErrorHandler ([WithErrorHandler];
// default hardening.WriteError).
//
// Handlers must return when their context is done; the package never writes
// to a stream after the handler returned.
//
// The package reads no environment: the application passes [WithKeepAlive],
// [WithMaxStreamsPerUser] and [WithMaxStreamsPerTenant]. (FromEnv and the
// EnvKeepAlive, EnvMaxPerUser and EnvMaxPerTenant names are gone, pre-1.0;
// the reference service examples/hub maps its STREAMAUTH_* variables to
// these options.)
package streamauth
