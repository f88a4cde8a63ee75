package postgresstore_test

import (
	"context"
	"fmt"
	"os"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
	"github.com/jmoiron/sqlx"

	"github.com/systembuilderhub/hardening/migrate"
	"github.com/systembuilderhub/hardening/streamauth"
	"github.com/systembuilderhub/hardening/streamauth/postgresstore"
)

// Revocations kept in Postgres survive a restart and reach every replica
// on the same schema. (Not run by go test: it needs a server.)
func Example() {
	ctx := context.Background()
	db, err := sqlx.Open("pgx", os.Getenv("DATABASE_URL")) // postgres://app@db:5432/app
	if err != nil {
		panic(err)
	}
	defer db.Close()
	if _, err := migrate.Up(ctx, db); err != nil { // the dialect follows the driver: creates the revocation table
		panic(err)
	}
	store, err := postgresstore.New(db) // says so when the migrations are missing
	if err != nil {
		panic(err)
	}
	reg, _ := streamauth.NewRegistry(streamauth.WithRevocationStore(store))
	if err := reg.LoadRevocations(ctx); err != nil { // fail at startup, not at the first stream
		panic(err)
	}
	defer reg.Close(ctx)
	_, _ = reg.Revoke(ctx, streamauth.Selector{Subject: "alice"})

	revs, _ := store.Load(ctx, time.Now())
	fmt.Println(len(revs), revs[0].Subject)
}
