// Package flags is the kit's feature-flag library: boolean flags registered
// in code, a global value and optional per-tenant overrides kept in a Store
// (memory, SQLite or Redis), an append-only audit record for every change,
// and an in-process cache that makes evaluation a lock-free map lookup.
//
// # Evaluation
//
// A flag evaluates, for a tenant, to the tenant's override, else the global
// value, else the default it was registered with. An unregistered flag
// evaluates to the caller's default and is counted
// (hardening_flags_unknown_total); evaluation never returns an error and
// never touches the store.
//
// In a request handler the tenant is the verified caller's: behind
// hardening.RequireCaller, [Client.EnabledContext](r.Context(), name, def)
// evaluates for hardening.CallerFrom(ctx).Tenant (no caller means no
// override applies). [WithTenantFrom] replaces that source (an application
// that keeps the tenant elsewhere in the context); the explicit forms
// ([Client.Enabled](name, tenantID, def)) stay for code that has the tenant
// at hand. The package does not import tenancy.
//
// # Errors
//
// The errors an application answers a request with are hardening.Errors:
// [ErrUnknownFlag] (404 flag_not_found), [ErrInvalidName] (400
// invalid_flag_name), [ErrInvalidChange] (400 invalid_change),
// [ErrInvalidCursor] (400 invalid_cursor) and [ErrUnavailable] (503
// flags_unavailable, wrapping the store's error). hardening.WriteError(w,
// r, err) answers them; errors.Is finds the sentinel. The package has no
// HTTP handler of its own.
//
// # Changes
//
// [Client.Toggle] writes the new value and appends the audit record
// {flag, old value, new value, changed by, tenant, changed at, reason} in one
// atomic step of the store (one BEGIN IMMEDIATE transaction in SQLite, one
// Lua script in Redis). A toggle to the current value is still recorded, with
// old = new, so the intent is kept. The audit is append-only: the Store
// interface has no way to change or delete a record.
//
// # Cache and replicas
//
// [Client.Start] loads the store's state and starts one goroutine that keeps
// the cache fresh: it checks the store's version every poll interval
// (a one-row SELECT in SQLite, a GET in Redis) and reloads on a change; a
// store that implements [Notifier] (the Redis store, over pub/sub) also
// pushes changes, so other replicas see a toggle at once, and the poll is the
// safety net that bounds staleness when a notification is lost. When the
// store cannot be reached for longer than the maximum staleness, the cache
// stops serving stored values and every flag evaluates to its registered
// default (result "stale") until the store answers again. [Client.Close]
// stops the goroutine.
//
// Hooks: [Client.OnChange] receives the audit record of every toggle made
// through this client (forward it to a webhook or a SIEM); [Client.OnUpdate]
// receives the names of the flags whose cached values changed, whichever
// replica changed them (the OpenFeature provider in flags/openfeature uses it
// to emit PROVIDER_CONFIGURATION_CHANGED).
//
// The package reads no environment: the application passes
// [WithPollInterval] and [WithMaxStaleness]. (FromEnv and the
// EnvPollInterval and EnvMaxStaleness names are gone, pre-1.0; the
// reference service examples/hub maps its FLAGS_POLL_INTERVAL and
// FLAGS_MAX_STALENESS variables to these options.)
package flags
