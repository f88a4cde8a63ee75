package sqlitestore_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/systembuilderhub/hardening/flags"
	"github.com/systembuilderhub/hardening/flags/sqlitestore"
	"github.com/systembuilderhub/hardening/migrate"
)

func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "flags-example")
	defer os.RemoveAll(dir)

	db, err := migrate.OpenSQLite(ctx, filepath.Join(dir, "app.db"), 0) // WAL, busy_timeout, foreign keys
	if err != nil {
		panic(err)
	}
	defer db.Close()
	if _, err := migrate.Up(ctx, db); err != nil { // creates the flag tables
		panic(err)
	}
	store, _ := sqlitestore.New(db)
	c, _ := flags.New(store, flags.WithFlags(flags.Flag{Name: "llm.streaming"}))
	if err := c.Start(ctx); err != nil {
		panic(err)
	}
	defer c.Close(ctx)

	rec, _ := c.Toggle(ctx, "llm.streaming", true, flags.Change{By: "alice", Reason: "launch"})
	fmt.Println(rec.Flag, rec.OldValue == nil, rec.NewValue, c.Enabled("llm.streaming", "acme", false))
	// Output: llm.streaming true true true
}
