package postgresstore_test

import (
	"context"
	"fmt"
	"os"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
	"github.com/jmoiron/sqlx"

	"github.com/systembuilderhub/hardening/flags"
	"github.com/systembuilderhub/hardening/flags/postgresstore"
	"github.com/systembuilderhub/hardening/migrate"
)

// Flags on Postgres: every replica's client answers from its in-memory
// snapshot and hears the toggles of the others through LISTEN/NOTIFY.
// (Not run by go test: it needs a server.)
func Example() {
	ctx := context.Background()
	db, err := sqlx.Open("pgx", os.Getenv("DATABASE_URL")) // postgres://app@db:5432/app
	if err != nil {
		panic(err)
	}
	defer db.Close()
	if _, err := migrate.Up(ctx, db); err != nil { // the dialect follows the driver: creates the flag tables
		panic(err)
	}
	store, err := postgresstore.New(db) // says so when the migrations are missing
	if err != nil {
		panic(err)
	}
	c, _ := flags.New(store, flags.WithFlags(flags.Flag{Name: "llm.streaming"}))
	if err := c.Start(ctx); err != nil { // loads the snapshot, then listens
		panic(err)
	}
	defer c.Close(ctx) // stops the listener and closes its connection

	rec, _ := c.Toggle(ctx, "llm.streaming", true, flags.Change{By: "alice", Reason: "launch"})
	fmt.Println(rec.Flag, rec.NewValue, c.Enabled("llm.streaming", "acme", false))
}
