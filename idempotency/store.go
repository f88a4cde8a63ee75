package idempotency

import (
	"context"
	"net/http"
	"time"
)

// Store keeps idempotency records. Implementations must make each method
// atomic with respect to every other caller sharing the backend, across
// goroutines, processes and replicas: Claim is the single decision point
// that lets exactly one request run per key.
//
// Time is an argument (ClaimRequest.Now, CompleteRequest.Now,
// RenewRequest.Now) so that every process sharing a store decides on the
// caller's clock and tests can inject one. A "no" (in flight, mismatch,
// fenced) is a value; an error means the backend failed.
//
// A lease lasts as long as its owner keeps renewing it: the middleware
// calls Renew while the handler runs, so a slow handler keeps its key
// however long it takes, and the lease lapses (one lock timeout after the
// last renewal) only when its process stops renewing it: killed, frozen or
// cut off from the store.
//
// The kit ships NewMemoryStore, sqlitestore.New, postgresstore.New and
// redisstore.New; every implementation must pass storetest.Run.
type Store interface {
	// Claim looks up req.Key and, when no live record exists (or the
	// in-flight record's lease has expired), atomically records an
	// in-flight claim owned by req.Owner.
	Claim(ctx context.Context, req ClaimRequest) (ClaimResult, error)
	// Complete stores the response of a claimed request. It reports false,
	// storing nothing, when req.Owner no longer owns the key's lease (the
	// lease expired and another request took over, or it was released):
	// the owner token fences a late original.
	Complete(ctx context.Context, req CompleteRequest) (bool, error)
	// Release deletes the in-flight record of key if owner still owns it,
	// so that the client may retry (5xx responses and panics). It reports
	// whether a record was deleted.
	Release(ctx context.Context, key, owner string) (bool, error)
	// Renew extends the lease of req.Key to req.Now+req.LockTimeout if
	// req.Owner still owns it: the record is in flight, its owner is
	// req.Owner and it has not expired (its TTL). It reports false,
	// changing nothing, when the owner lost the key: completed, released,
	// expired, or taken over by another request after the lease lapsed. A
	// lapsed lease that nobody took over is renewed. The record's expiry
	// is moved to the new lease end when it would come first, so a record
	// never expires while its lease is held.
	Renew(ctx context.Context, req RenewRequest) (bool, error)
}

// Sweeper is implemented by stores whose expired records must be deleted
// explicitly (memory, SQLite, Postgres). Redis uses key expiry instead.
type Sweeper interface {
	// Sweep deletes at most limit records whose result TTL ended at or
	// before now, and returns how many it deleted. Implementations keep
	// each call short (SQLite holds its write lock for one small batch).
	Sweep(ctx context.Context, now time.Time, limit int) (int, error)
}

// Stats is the count of live records in a store.
type Stats struct {
	// Keys is the number of unexpired records, completed or in flight.
	Keys int64
	// InFlight is the number of records whose lease is held at now.
	InFlight int64
}

// StatsReader is implemented by stores that can count their records.
type StatsReader interface {
	// Stats counts the records live at now.
	Stats(ctx context.Context, now time.Time) (Stats, error)
}

// ClaimRequest is the input of Store.Claim.
type ClaimRequest struct {
	// Key is the scoped lookup key (see ScopedKey): it already includes
	// the scope, method, path and Idempotency-Key value.
	Key string
	// Fingerprint identifies the request payload (see Fingerprint).
	Fingerprint string
	// Owner is a random token unique to this attempt.
	Owner string
	// Now is the caller's current time.
	Now time.Time
	// LockTimeout is the lease: how long the claim blocks other requests
	// before another one may take over, unless the owner renews it.
	LockTimeout time.Duration
	// TTL is how long the record (in flight or completed) is kept.
	TTL time.Duration
}

// ClaimStatus is the outcome of a Claim.
type ClaimStatus int

const (
	// Claimed: the caller owns the lease and must run the operation, then
	// Complete or Release.
	Claimed ClaimStatus = iota + 1
	// InFlight: another request holds an unexpired lease on the key.
	InFlight
	// Completed: the key has a stored response, in ClaimResult.Record.
	Completed
	// Mismatch: the key is in use with a different fingerprint.
	Mismatch
)

// String returns the status name.
func (s ClaimStatus) String() string {
	switch s {
	case Claimed:
		return "claimed"
	case InFlight:
		return "in_flight"
	case Completed:
		return "completed"
	case Mismatch:
		return "mismatch"
	}
	return "unknown"
}

// ClaimResult is the output of Store.Claim.
type ClaimResult struct {
	// Status is the decision.
	Status ClaimStatus
	// TookOver is set with Claimed when the claim replaced an in-flight
	// record whose lease had expired (its owner presumably died).
	TookOver bool
	// LeaseExpiresAt is set with InFlight: when the holder's lease ends.
	LeaseExpiresAt time.Time
	// Record is set with Completed.
	Record *Record
}

// Record is a stored response.
type Record struct {
	// StatusCode is the response status.
	StatusCode int
	// Header holds the allow-listed response headers.
	Header http.Header
	// Body is the response body; empty when BodyOmitted.
	Body []byte
	// BodyOmitted is set when the body was not stored: it was larger than
	// the stored-body cap, or the response was streamed or hijacked.
	BodyOmitted bool
}

// CompleteRequest is the input of Store.Complete.
type CompleteRequest struct {
	// Key and Owner identify the claim.
	Key, Owner string
	// Record is the response to store.
	Record Record
	// Now is the caller's current time; the record expires at Now+TTL.
	Now time.Time
	// TTL is how long the completed record is kept.
	TTL time.Duration
}

// RenewRequest is the input of Store.Renew.
type RenewRequest struct {
	// Key and Owner identify the claim.
	Key, Owner string
	// Now is the caller's current time; the lease then ends at
	// Now+LockTimeout.
	Now time.Time
	// LockTimeout is the length of the renewed lease.
	LockTimeout time.Duration
}
