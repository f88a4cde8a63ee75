package tenancy

import (
	"fmt"
	"os"
	"strconv"
)

// Environment variables read by LimitsFromEnv.
const (
	EnvActivePreviews     = "DEFAULT_ACTIVE_PREVIEWS_LIMIT"    // integer >= 0, default 5
	EnvSnapshotsPerMinute = "DEFAULT_SNAPSHOT_RATE_PER_MINUTE" // integer >= 0, default 10
	EnvLLMMonthlyBudget   = "DEFAULT_LLM_MONTHLY_BUDGET_USD"   // decimal USD >= 0, default 100.0
)

// LimitsFromEnv returns the default limits from the environment; unset or
// empty variables keep DefaultLimits. A value that does not parse (or is
// negative) is an error naming the variable.
func LimitsFromEnv() (Limits, error) { return limitsFrom(os.LookupEnv) }

// FromEnv returns WithDefaults(LimitsFromEnv()).
func FromEnv() (Option, error) {
	l, err := LimitsFromEnv()
	if err != nil {
		return nil, err
	}
	return WithDefaults(l), nil
}

func limitsFrom(lookup func(string) (string, bool)) (Limits, error) {
	l := DefaultLimits()
	for _, iv := range []struct {
		name string
		dst  *int64
	}{{EnvActivePreviews, &l.ActivePreviews}, {EnvSnapshotsPerMinute, &l.SnapshotsPerMinute}} {
		if v, ok := lookup(iv.name); ok && v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || checkLimit(iv.name, n) != nil {
				return Limits{}, fmt.Errorf("tenancy: %s=%q: want an integer from 0 to %d", iv.name, v, int64(MaxLimit))
			}
			*iv.dst = n
		}
	}
	if v, ok := lookup(EnvLLMMonthlyBudget); ok && v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return Limits{}, fmt.Errorf("tenancy: %s=%q: want a decimal USD amount >= 0", EnvLLMMonthlyBudget, v)
		}
		m, err := MicrosFromUSD(f)
		if err != nil || m > MaxLimit {
			return Limits{}, fmt.Errorf("tenancy: %s=%q: want a decimal USD amount from 0 to %v", EnvLLMMonthlyBudget, v, Micros(MaxLimit).USD())
		}
		l.LLMMonthlyBudget = m
	}
	return l, nil
}
