package main

import (
	"context"
	"errors"
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
	case cfg.Redis != nil:
		return a.openRedis(ctx, cfg.Redis)
	case cfg.SQLitePath != "":
		return a.openSQLite(ctx, cfg.SQLitePath)
	}
	return stores{quotas: tenancy.NewMemoryStore(), idem: idempotency.NewMemoryStore(), flags: flags.NewMemoryStore()}, nil
}

func (a *app) openSQLite(ctx context.Context, path string) (stores, error) {
	db, err := migrate.OpenSQLite(ctx, path, 0)
	if err != nil {
		return stores{}, fmt.Errorf("ORDERS_DATABASE_URL: %w", err)
	}
	a.closers = append(a.closers, func(context.Context) error { return db.Close() })
	if _, err = migrate.Up(ctx, db); err != nil {
		return stores{}, fmt.Errorf("ORDERS_DATABASE_URL: migrate: %w", err)
	}
	q, err1 := quotasqlite.New(db)
	i, err2 := idemsqlite.New(db)
	f, err3 := flagssqlite.New(db)
	return stores{quotas: q, idem: i, flags: f}, errors.Join(err1, err2, err3)
}

func (a *app) openRedis(ctx context.Context, opts *redis.Options) (stores, error) {
	rdb := redis.NewClient(opts)
	a.closers = append(a.closers, func(context.Context) error { return rdb.Close() })
	if err := rdb.Ping(ctx).Err(); err != nil {
		return stores{}, fmt.Errorf("ORDERS_REDIS_URL: %w", err)
	}
	q, err1 := quotaredis.New(rdb, quotaredis.WithPrefix(redisPrefix))
	i, err2 := idemredis.New(rdb, idemredis.WithPrefix(redisPrefix+"idempotency:"))
	f, err3 := flagsredis.New(rdb, flagsredis.WithPrefix(redisPrefix))
	return stores{quotas: q, idem: i, flags: f, rdb: rdb}, errors.Join(err1, err2, err3)
}
