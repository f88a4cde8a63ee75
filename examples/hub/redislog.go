package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
)

// redisLogger sends go-redis's own log lines (reconnects, pub/sub and pool
// errors) to the hub's JSON log, so every line the hub writes is JSON.
// go-redis keeps one logger per process: main sets it, as only an
// application should.
type redisLogger struct{ log *slog.Logger }

// Printf logs one go-redis line at WARN: go-redis logs only trouble.
func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.WarnContext(ctx, strings.TrimSpace(fmt.Sprintf(format, v...)), "component", "go-redis")
}
