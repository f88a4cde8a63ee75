package sqlitestore_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/systembuilderhub/hardening/migrate"
	"github.com/systembuilderhub/hardening/previewsec"
	"github.com/systembuilderhub/hardening/previewsec/sqlitestore"
)

// Replicas sharing one SQLite file share the key ring.
func ExampleNew() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "previewsec-example")
	defer os.RemoveAll(dir)
	db, err := migrate.OpenSQLite(ctx, filepath.Join(dir, "app.db"), 5*time.Second)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close()
	if _, err := migrate.Up(ctx, db); err != nil { // the schema comes from migrate
		fmt.Println(err)
		return
	}
	store, _ := sqlitestore.New(db)
	at := func() time.Time { return time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC) }
	ring, _ := previewsec.NewKeyRing(store, previewsec.WithClock(at))
	if err := ring.Refresh(ctx); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(ring.KeyIDs())
	// Output: [20300601T000000Z]
}
