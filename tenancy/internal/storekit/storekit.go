// Package storekit holds what the tenancy stores (memory, SQLite, Redis)
// and their conformance suite share and users of the kit never call: the
// GCRA's arithmetic, the audit page size, the order of audit entries.
package storekit

import (
	"maps"
	"slices"
	"time"
)

// MaxTolerance bounds the GCRA's burst tolerance at 2^53-1 µs
// (tenancy.MaxLimit), so every span a store computes is an integer the
// Redis scripts, computing in doubles, hold exactly.
const MaxTolerance = 1<<53 - 1

// RateInterval returns the GCRA emission interval, in microseconds, of
// limit units per period: period/limit, at least 1 µs.
func RateInterval(limit int64, period time.Duration) int64 {
	return max(period.Microseconds()/max(limit, 1), 1)
}

// RateUsed returns how many units of the burst are in use at now given the
// stored tat: ceil((tat-now)/T), at most the burst (limit when burst <= 0).
func RateUsed(tat, now, limit, burst int64, period time.Duration) int64 {
	if limit <= 0 || tat <= now {
		return 0
	}
	if burst <= 0 {
		burst = limit
	}
	interval := RateInterval(limit, period)
	return min((tat-now+interval-1)/interval, burst)
}

// PageSize normalizes tenancy.AuditQuery.Limit: <= 0 means 100, capped at
// 1000.
func PageSize(limit int) int {
	switch {
	case limit <= 0:
		return 100
	case limit > 1000:
		return 1000
	}
	return limit
}

// SortedNames returns the keys of a SetLimits request's limits in lexical
// order: the order in which stores write its audit entries.
func SortedNames[V any](l map[string]V) []string { return slices.Sorted(maps.Keys(l)) }
