package streamauth

// ArmedTimers returns the number of expiry timers currently armed: one per
// live stream that expires. It exists for the tests' leak checks only, so
// it is not part of the package's API.
func (r *Registry) ArmedTimers() int { return int(r.timers.Load()) }

// TokenCacheLen returns how many tokens a's cache holds (tests only).
func TokenCacheLen(a *JWTAuthenticator) int { return a.cache.Len() }
