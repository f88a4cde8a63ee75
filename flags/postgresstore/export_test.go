package postgresstore

import "time"

// WithHealthInterval sets how long the listener waits for a notification
// before it pings its connection (30s otherwise): for tests only.
func WithHealthInterval(d time.Duration) Option {
	return optionFunc(func(c *config) { c.health = d })
}
