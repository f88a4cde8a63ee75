package testenv

import (
	"context"
	"testing"
)

// TestPostgres checks that the schema is the test's own and that a second
// pool from URL lands in it too.
func TestPostgres(t *testing.T) {
	p := Postgres(t)
	ctx := context.Background()
	if _, err := p.DB.ExecContext(ctx, `CREATE TABLE probe (v int)`); err != nil {
		t.Fatal(err)
	}
	var schema string
	if err := p.Open(t).GetContext(ctx, &schema, `SELECT table_schema FROM information_schema.tables WHERE table_name = 'probe' AND table_schema = current_schema()`); err != nil {
		t.Fatal(err)
	}
	if schema != p.Schema {
		t.Fatalf("second pool sees schema %q, want %q", schema, p.Schema)
	}
}
