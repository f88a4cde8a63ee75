package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"time"
)

// storeChain is the chain side of one store's row while it runs.
type storeChain struct {
	url  string
	kind string // "hub" (the hub binary) or "chain" (in-process chain)
	// rtt is the median of one bare single-row write on the store.
	rtt time.Duration
	// stop stops the server and removes what the run made on the store;
	// its note, if any, goes into the result.
	stop func() (note string, err error)
}

// startStore starts the chain side of store's row: the memory or Postgres
// chain in a child process, or the hub binary on SQLite or Redis.
func startStore(ctx context.Context, cfg *config, store string, secret []byte, tmp string, logw io.Writer) (storeChain, error) {
	sc := storeChain{kind: "hub"}
	var stop func()
	var err error
	switch store {
	case "memory":
		sc.kind = "chain"
		sc.url, stop, err = startChild(ctx, *cfg, "memory", secret)
	case "postgres":
		return startPostgres(ctx, cfg, secret, logw)
	case "sqlite", "redis":
		if sc.rtt, err = storeRTT(ctx, store, cfg.Redis, tmp); err != nil {
			return sc, err
		}
		var bin string
		if bin, err = hubBinary(ctx, cfg.Hub, tmp, logw); err == nil {
			cfg.Hub = bin
			sc.url, stop, err = startHub(ctx, bin, store, cfg.Redis, filepath.Join(tmp, "hub-"+store+".db"), secret)
		}
	}
	if err != nil {
		return sc, err
	}
	sc.stop = func() (string, error) { stop(); return "", nil }
	return sc, nil
}

// startPostgres creates the run's schema, times the bare round trip on it
// and starts the chain on it; stop stops the chain, counts what it stored
// and drops the schema.
func startPostgres(ctx context.Context, cfg *config, secret []byte, logw io.Writer) (storeChain, error) {
	schema, err := createPGSchema(ctx, cfg.Postgres)
	if err != nil {
		return storeChain{}, err
	}
	fmt.Fprintf(logw, "loadtest: postgres: schema %s (dropped at the end)\n", schema.Name)
	sc := storeChain{kind: "chain"}
	var stop func()
	if sc.rtt, err = pgRTT(ctx, schema.URL); err == nil {
		cfg.pgURL = schema.URL
		sc.url, stop, err = startChild(ctx, *cfg, "postgres", secret)
		cfg.pgURL = ""
	}
	if err != nil {
		return sc, errors.Join(err, schema.drop())
	}
	sc.stop = func() (string, error) {
		stop()
		n, err := schema.records(context.Background())
		note := fmt.Sprintf("postgres: the chain ran in-process on the kit's Postgres stores (idempotency, tenancy, previewsec keys and revocations, flags) in schema %s, which held %d idempotency records at the end and was then dropped.", schema.Name, n)
		return note, errors.Join(err, schema.drop())
	}
	return sc, nil
}
