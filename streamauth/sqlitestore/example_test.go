package sqlitestore_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/systembuilderhub/hardening/migrate"
	"github.com/systembuilderhub/hardening/streamauth"
	"github.com/systembuilderhub/hardening/streamauth/sqlitestore"
)

// Revocations kept in SQLite survive a restart: a new registry on the same
// file refuses what the previous one revoked.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "revocations")
	defer os.RemoveAll(dir)
	db, err := migrate.OpenSQLite(ctx, filepath.Join(dir, "app.db"), 5*time.Second)
	if err != nil {
		panic(err)
	}
	defer db.Close()
	if _, err := migrate.Up(ctx, db); err != nil {
		panic(err)
	}
	store, err := sqlitestore.New(db)
	if err != nil {
		panic(err)
	}
	reg, _ := streamauth.NewRegistry(streamauth.WithRevocationStore(store))
	if err := reg.LoadRevocations(ctx); err != nil { // fail at startup, not at the first stream
		panic(err)
	}
	_, _ = reg.Revoke(ctx, streamauth.Selector{Subject: "alice"})
	_ = reg.Close(ctx)

	revs, _ := store.Load(ctx, time.Now())
	fmt.Println(len(revs), revs[0].Subject, revs[0].ExpiresAt.Sub(revs[0].RevokedAt))
	// Output: 1 alice 24h0m0s
}
