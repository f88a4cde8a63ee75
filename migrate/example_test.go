package migrate_test

import (
	"context"
	"fmt"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing/fstest"

	"github.com/systembuilderhub/hardening/migrate"
)

// Apply the kit's schema and an application's own migration set at startup,
// refusing to start when the database does not match this binary.
func Example() {
	dir, _ := os.MkdirTemp("", "migrate-example")
	defer os.RemoveAll(dir)
	ctx := context.Background()

	db, err := migrate.OpenSQLite(ctx, filepath.Join(dir, "app.db"), 0)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	appMigrations := fstest.MapFS{
		"0001_orders.sql": {Data: []byte("CREATE TABLE orders (id INTEGER PRIMARY KEY, tenant_id TEXT NOT NULL);")},
	}
	m, err := migrate.New(db, migrate.WithSet("app", appMigrations))
	if err != nil {
		log.Fatal(err)
	}
	policy := migrate.Policy{CheckOnStartup: true, AutoApply: true, Strict: true, UpCommand: "myservice migrate up"}
	st, err := m.Enforce(ctx, policy)
	if err != nil {
		log.Fatal(err) // the error text names the versions and the command to run
	}
	fmt.Println("at head:", st.AtHead())
	for _, s := range st.Sets {
		fmt.Printf("%s at version %d\n", s.Set, s.Current)
	}

	// Serve the same verdict on /readyz.
	rec := httptest.NewRecorder()
	m.ReadinessHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	fmt.Println("readyz:", rec.Code)
	// Output:
	// at head: true
	// kit at version 4
	// app at version 1
	// readyz: 200
}
