package postgresstore_test

import (
	"context"
	"errors"
	"fmt"
	"os"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
	"github.com/jmoiron/sqlx"

	"github.com/systembuilderhub/hardening/migrate"
	"github.com/systembuilderhub/hardening/previewsec"
	"github.com/systembuilderhub/hardening/previewsec/postgresstore"
)

// Replicas sharing one Postgres database share the key ring and the
// revocation list. (No output is checked: it needs a server, at
// POSTGRES_URL here.)
func ExampleNew() {
	url := os.Getenv("POSTGRES_URL") // postgres://app@db.internal/app
	if url == "" {
		return
	}
	ctx := context.Background()
	db, err := sqlx.Open("pgx", url) // a *sql.DB you already have: sqlx.NewDb(sqlDB, "pgx")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close()
	if _, err := migrate.Up(ctx, db); err != nil { // the schema comes from migrate (the dialect from the driver)
		fmt.Println(err)
		return
	}
	store, err := postgresstore.New(db)
	if errors.Is(err, postgresstore.ErrNotMigrated) {
		fmt.Println("run the migrations first:", err)
		return
	}
	if err != nil {
		fmt.Println(err)
		return
	}
	ring, _ := previewsec.NewKeyRing(store)
	if err := ring.Refresh(ctx); err != nil { // creates today's key once across replicas
		fmt.Println(err)
		return
	}
	revs, _ := previewsec.NewRevocationList(store)
	verifier, _ := previewsec.NewVerifier(ring, previewsec.WithRevocations(revs))
	issuer, _ := previewsec.NewIssuer(ring)
	token, _, kid, err := issuer.Mint(ctx, previewsec.Grant{TenantID: "t1", UserID: "u1", PreviewID: "p1"}, 0)
	if err != nil {
		fmt.Println(err)
		return
	}
	claims, err := verifier.Verify(ctx, token)
	fmt.Println(kid, claims.PreviewID, err)
}
