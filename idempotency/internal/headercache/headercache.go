// Package headercache decodes the JSON header column of the SQL
// idempotency stores through a small cache: most responses of one service
// store the same few header sets, and decoding their JSON was the largest
// cost of a replay after the SELECT.
package headercache

import (
	"encoding/json"
	"net/http"
	"sync"
)

// maxEntries bounds the cache; it is emptied when full.
const maxEntries = 64

// Cache maps stored header JSON to decoded headers. The zero value is
// ready to use; it is safe for concurrent use.
type Cache struct {
	mu      sync.RWMutex
	headers map[string]http.Header
}

// Decode returns a fresh copy of the header set stored as raw.
func (c *Cache) Decode(raw string) (http.Header, error) {
	c.mu.RLock()
	h, ok := c.headers[raw]
	c.mu.RUnlock()
	if ok {
		return h.Clone(), nil
	}
	if err := json.Unmarshal([]byte(raw), &h); err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.headers == nil || len(c.headers) >= maxEntries {
		c.headers = make(map[string]http.Header)
	}
	c.headers[raw] = h
	c.mu.Unlock()
	return h.Clone(), nil
}
