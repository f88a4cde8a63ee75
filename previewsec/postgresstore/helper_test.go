package postgresstore_test

import (
	"context"
	"io/fs"
	"os"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
	"github.com/jmoiron/sqlx"

	"github.com/systembuilderhub/hardening/internal/testenv"
	"github.com/systembuilderhub/hardening/migrate"
	"github.com/systembuilderhub/hardening/previewsec/keystoretest"
	"github.com/systembuilderhub/hardening/previewsec/postgresstore"
)

// migration is the kit's Postgres migration this store needs.
const migration = "0003_previewsec.sql"

// migrated gives t a private schema holding 0003_previewsec, applied from
// the kit's embedded Postgres migrations (until migrate applies them on
// Postgres itself).
func migrated(t testing.TB) *testenv.PostgresDB {
	t.Helper()
	p := testenv.Postgres(t)
	applySchema(t, p.DB)
	return p
}

func applySchema(t testing.TB, db *sqlx.DB) {
	t.Helper()
	kit, err := migrate.KitMigrations("postgres")
	if err != nil {
		t.Fatal(err)
	}
	ddl, err := fs.ReadFile(kit, migration)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := db.ExecContext(ctx, string(ddl)); err != nil {
		t.Fatalf("apply %s: %v", migration, err)
	}
}

// helperEnv names the variable that makes the test binary a child of
// keystoretest.RotateInProcesses: the URL of the shared schema.
const helperEnv = "PREVIEWSEC_HELPER_PG"

// helperProcess runs in a child: keystoretest.RotateChild on the shared
// schema.
func helperProcess(url string) int {
	db, err := sqlx.Open("pgx", url)
	if err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		return 2
	}
	defer db.Close()
	s, err := postgresstore.New(db)
	if err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		return 2
	}
	return keystoretest.RotateChild(s)
}
