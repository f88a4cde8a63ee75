package postgresstore_test

import (
	"os"
	"testing"

	"github.com/systembuilderhub/hardening/internal/testenv"
)

// newDB gives t a private schema carrying the idempotency migration.
// Until migrate applies Postgres migrations, the test applies the file
// itself.
func newDB(t testing.TB) *testenv.PostgresDB {
	t.Helper()
	p := testenv.Postgres(t)
	src, err := os.ReadFile("../../migrate/sql/postgres/0001_idempotency.sql")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.DB.Exec(string(src)); err != nil {
		t.Fatalf("apply 0001_idempotency.sql: %v", err)
	}
	return p
}
