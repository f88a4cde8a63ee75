package main

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/systembuilderhub/hardening/flags"
	flagsredis "github.com/systembuilderhub/hardening/flags/redisstore"
	flagssqlite "github.com/systembuilderhub/hardening/flags/sqlitestore"
	"github.com/systembuilderhub/hardening/idempotency"
	idemredis "github.com/systembuilderhub/hardening/idempotency/redisstore"
	idemsqlite "github.com/systembuilderhub/hardening/idempotency/sqlitestore"
	"github.com/systembuilderhub/hardening/migrate"
	"github.com/systembuilderhub/hardening/tenancy"
	quotaredis "github.com/systembuilderhub/hardening/tenancy/redisstore"
	quotasqlite "github.com/systembuilderhub/hardening/tenancy/sqlitestore"
)

// stores are the backends of the three stateful features.
type stores struct {
	quotas tenancy.Store
	idem   idempotency.Store
	flags  flags.Store
	rdb    *redis.Client // set in Redis mode, for the event bus
}

// redisPrefix keeps this service's keys apart from other users of the server.
const redisPrefix = "orders:"

// openStores picks memory, SQLite (migrated here) or Redis from cfg. The
// connection, once open, is closed by a.Close, even when openStores fails.
func (a *app) openStores(ctx context.Context, cfg config) (stores, error) {
	switch {
	case cfg.RedisURL != "":
		return a.openRedis(ctx, cfg.RedisURL)
	case cfg.SQLitePath != "":
		return a.openSQLite(ctx, cfg.SQLitePath)
	}
	return stores{quotas: tenancy.NewMemoryStore(), idem: idempotency.NewMemoryStore(), flags: flags.NewMemoryStore()}, nil
}

func (a *app) openSQLite(ctx context.Context, path string) (s stores, err error) {
	db, err := migrate.OpenSQLite(ctx, path, 0)
	if err != nil {
		return s, fmt.Errorf("ORDERS_DATABASE_URL: %w", err)
	}
	a.closers = append(a.closers, func(context.Context) error { return db.Close() })
	if _, err = migrate.Up(ctx, db); err != nil {
		return s, fmt.Errorf("ORDERS_DATABASE_URL: migrate: %w", err)
	}
	if s.quotas, err = quotasqlite.New(db); err != nil {
		return s, err
	}
	if s.idem, err = idemsqlite.New(db); err != nil {
		return s, err
	}
	s.flags, err = flagssqlite.New(db)
	return s, err
}

func (a *app) openRedis(ctx context.Context, rawURL string) (s stores, err error) {
	opts, err := redis.ParseURL(rawURL)
	if err != nil {
		return s, fmt.Errorf("ORDERS_REDIS_URL: %w", err)
	}
	s.rdb = redis.NewClient(opts)
	a.closers = append(a.closers, func(context.Context) error { return s.rdb.Close() })
	if err = s.rdb.Ping(ctx).Err(); err != nil {
		return s, fmt.Errorf("ORDERS_REDIS_URL: %w", err)
	}
	if s.quotas, err = quotaredis.New(s.rdb, quotaredis.WithPrefix(redisPrefix)); err != nil {
		return s, err
	}
	if s.idem, err = idemredis.New(s.rdb, idemredis.WithPrefix(redisPrefix+"idempotency:")); err != nil {
		return s, err
	}
	s.flags, err = flagsredis.New(s.rdb, flagsredis.WithPrefix(redisPrefix))
	return s, err
}
