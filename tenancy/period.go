package tenancy

import (
	"fmt"
	"math"
	"time"
)

// Period is the accounting period of a budget: a calendar period in UTC.
type Period int

// Budget periods.
const (
	// Monthly budgets reset at the start of each calendar month (UTC).
	Monthly Period = iota + 1
	// Daily budgets reset at midnight UTC.
	Daily
)

// String returns "monthly" or "daily".
func (p Period) String() string {
	switch p {
	case Monthly:
		return "monthly"
	case Daily:
		return "daily"
	}
	return fmt.Sprintf("Period(%d)", int(p))
}

// Key returns the ledger key of the period holding t: "2006-01" for
// Monthly, "2006-01-02" for Daily.
func (p Period) Key(t time.Time) string {
	if p == Daily {
		return t.UTC().Format("2006-01-02")
	}
	return t.UTC().Format("2006-01")
}

// End returns the start of the period after the one holding t.
func (p Period) End(t time.Time) time.Time {
	u := t.UTC()
	if p == Daily {
		return time.Date(u.Year(), u.Month(), u.Day()+1, 0, 0, 0, 0, time.UTC)
	}
	return time.Date(u.Year(), u.Month()+1, 1, 0, 0, 0, 0, time.UTC)
}

// Micros is an amount of money in integer micro-units (1 USD = 1,000,000
// micro-dollars). Budgets hold money as integers so that concurrent
// reservations add up exactly.
type Micros int64

// MicrosPerUSD is the number of micro-dollars in one US dollar.
const MicrosPerUSD = 1_000_000

// MicrosFromUSD converts dollars to micro-dollars, rounding to the nearest
// micro-dollar. It rejects NaN, infinities, negative amounts and amounts
// above MaxLimit micro-dollars (about 9 billion USD).
func MicrosFromUSD(usd float64) (Micros, error) {
	if math.IsNaN(usd) || math.IsInf(usd, 0) || usd < 0 {
		return 0, fmt.Errorf("tenancy: invalid USD amount %v", usd)
	}
	m := math.Round(usd * MicrosPerUSD)
	if m > MaxLimit {
		return 0, fmt.Errorf("%w: USD amount %v above the maximum %v", ErrInvalidLimit, usd, Micros(MaxLimit).USD())
	}
	return Micros(m), nil
}

// USD returns m in dollars.
func (m Micros) USD() float64 { return float64(m) / MicrosPerUSD }
