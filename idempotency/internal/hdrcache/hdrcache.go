// Package hdrcache decodes the JSON header sets the idempotency stores keep
// with each record, through a small cache: most responses of one service
// store the same few header sets, and decoding their JSON was the largest
// cost of a replay after the store's round trip.
package hdrcache

import (
	"encoding/json"
	"net/http"
	"sync"
)

// Max bounds a Cache; it is emptied when full.
const Max = 64

// Cache maps encoded header sets to their decoded form. The zero value is
// ready to use; it is safe for concurrent use.
type Cache struct {
	mu sync.RWMutex
	m  map[string]http.Header
}

// Decode returns a fresh copy of the header set encoded as raw (a JSON
// object of string arrays): the caller may modify it.
func (c *Cache) Decode(raw string) (http.Header, error) {
	c.mu.RLock()
	h, ok := c.m[raw]
	c.mu.RUnlock()
	if ok {
		return h.Clone(), nil
	}
	if err := json.Unmarshal([]byte(raw), &h); err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) >= Max {
		c.m = make(map[string]http.Header)
	}
	c.m[raw] = h
	c.mu.Unlock()
	return h.Clone(), nil
}
