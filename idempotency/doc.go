// Package idempotency makes HTTP handlers safe to retry: a client that
// repeats a POST after a timeout gets the first response again instead of
// creating a second preview, snapshot or charge.
//
// It follows the IETF httpapi Idempotency-Key draft and Stripe's practice.
// A request whose method is covered (POST and PATCH by default) and that
// carries an Idempotency-Key header is handled like this:
//
//   - The key must be a Structured Field string ("abc") or a bare token of
//     1 to 255 visible ASCII characters, else 400. A missing key passes
//     through, or is a 400 with WithRequireKey.
//   - The record is looked up under ScopedKey: the caller's scope, the
//     method, the path and the key, so two tenants or users never see each
//     other's response. The scope is DefaultScope, the tenant and subject of
//     the hardening.Caller that authentication (hardening.RequireCaller)
//     put in the request context; WithScope replaces it. A request with a
//     key and no scope is a 500 and the handler does not run.
//   - The body is read once (up to WithMaxRequestBody, else 413) and given
//     back to the handler; its SHA-256 Fingerprint with the method and
//     target must match the record's, else 422.
//   - The first request claims the key atomically in the Store with a
//     lease (an owner token and the lock timeout, 30s by default), which
//     the middleware renews while the handler runs (every third of the
//     lock timeout, WithLeaseRenewal). A second request while the first
//     runs gets 409 with Retry-After, however long the first one takes.
//   - A 2xx-4xx response (except 408, 409, 425 and 429 by default: see
//     WithStoreStatus) is stored with its status, an allow-list of
//     headers (Content-Type, Location, ETag, Link and WithReplayHeaders;
//     never Set-Cookie, Date or rate-limit headers) and its body, and kept
//     for the TTL (24h by default). Later requests get it back with
//     Idempotent-Replay: true.
//   - 5xx responses, responses WithStoreStatus declines and panics are
//     not stored: the lease is released (the panic re-raised) so the
//     client can retry. Responses larger than
//     WithMaxStoredBody, streamed (flushed) or hijacked ones are stored
//     without their body; their replay has the status and headers, an
//     empty body and Idempotency-Body-Omitted: true. The operation is never
//     executed twice.
//   - A lease lapses only when its process stops renewing it: killed,
//     frozen as a whole, or cut off from the store. (A handler that never
//     returns in a live process keeps its key: bound handlers with a
//     deadline.) One lock timeout after the last
//     renewal the next request with that key runs. The owner token fences
//     the original: if it finishes late, it cannot overwrite the record of
//     the request that took over; if its renewal finds the key taken, that
//     is logged and counted and the handler is left to finish.
//   - Store errors fail closed with 503 and the handler does not run,
//     unless WithFailOpen.
//
// Every such answer is an *Error (a hardening.Error) passed to the
// WithErrorHandler function, hardening.WriteError by default
// (application/problem+json).
//
// # Stores
//
// A Store has four verbs, Claim, Complete, Release and Renew; expiry decisions
// use the time the middleware passes in, so every process agrees with its
// clock (WithClock). NewMemoryStore serves one process; the sqlitestore,
// postgresstore and redisstore subpackages share records across processes
// and survive restarts. Optional interfaces: Sweeper (stores that need expired records
// deleted; Start runs it in the background and Close stops it) and
// StatsReader (counts for Status and the gauges). Package storetest is the
// conformance suite every store passes.
//
// # Ordering
//
// Put the middleware after authentication (the scope reads the caller
// from the context) and before rate limits and quotas, so that they run
// inside it. A 429 is not stored (DefaultStoreStatus), so a refused request
// does not consume its key, and the retry of a completed key gets its
// replay rather than a 429 that also spends quota.
//
// # Configuration
//
// The package reads no environment: the application passes WithTTL
// (default 24h) and WithLockTimeout (default 30s). The lock timeout bounds
// how long a key stays locked after its process died, not how long a
// handler may run: a running handler's lease is renewed. (FromEnv,
// FromLookup and the EnvTTL and EnvLockTimeout names are gone, pre-1.0:
// the reference service examples/hub maps its IDEMPOTENCY_TTL and
// IDEMPOTENCY_LOCK_TIMEOUT variables to these options.)
//
// # Metrics
//
// With WithRegisterer: hardening_idempotency_requests_total{outcome} with
// outcomes first, replay, conflict, mismatch, invalid, missing and error;
// hardening_idempotency_stored_keys and hardening_idempotency_in_flight_keys
// (refreshed by the sweeper loop and Status);
// hardening_idempotency_sweep_deleted_total;
// hardening_idempotency_fenced_completions_total; and
// hardening_idempotency_lease_renewals_total{result} with results renewed,
// lost and error.
package idempotency
