package previewsec

// TokenCacheLen returns how many tokens v's cache holds (tests only).
func TokenCacheLen(v *Verifier) int { return v.cache.Len() }
