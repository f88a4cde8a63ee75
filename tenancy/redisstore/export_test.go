package redisstore

// WithRequestTime makes rates use the request's Now instead of Redis TIME,
// so the conformance suite's injected clock drives the GCRA.
var WithRequestTime = withRequestTime
