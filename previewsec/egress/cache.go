package egress

import (
	"context"
	"net/netip"
	"sync"
	"time"
)

// cacheMax bounds the resolution cache; when full, expired entries
// are dropped, and if none expired the cache starts over.
const cacheMax = 4096

type cacheEntry struct {
	addrs   []netip.Addr
	expires time.Time
}

// resolveCache keeps successful resolutions for a fixed time. Failed
// lookups are not cached.
type resolveCache struct {
	mu  sync.Mutex
	ttl time.Duration
	now func() time.Time
	m   map[string]cacheEntry
}

func (c *resolveCache) get(host string) ([]netip.Addr, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[host]
	if !ok {
		return nil, false
	}
	if !c.now().Before(e.expires) {
		delete(c.m, host)
		return nil, false
	}
	return e.addrs, true
}

func (c *resolveCache) put(host string, addrs []netip.Addr) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if len(c.m) >= cacheMax {
		for k, e := range c.m {
			if !now.Before(e.expires) {
				delete(c.m, k)
			}
		}
		if len(c.m) >= cacheMax {
			clear(c.m)
		}
	}
	c.m[host] = cacheEntry{addrs: addrs, expires: now.Add(c.ttl)}
}

// lookup resolves host through the cache when one is configured. The
// returned slice is the caller's own (Decisions hand it out).
func (p *Policy) lookup(ctx context.Context, host string) ([]netip.Addr, error) {
	if p.cache == nil {
		return p.resolver.LookupNetIP(ctx, "ip", host)
	}
	if addrs, ok := p.cache.get(host); ok {
		return append([]netip.Addr(nil), addrs...), nil
	}
	addrs, err := p.resolver.LookupNetIP(ctx, "ip", host)
	if err == nil && len(addrs) > 0 {
		p.cache.put(host, append([]netip.Addr(nil), addrs...))
	}
	return addrs, err
}
