package testenv

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
)

// PostgresRole is an application role on a test's schema: a LOGIN role
// that is neither superuser nor BYPASSRLS, so row-level security applies
// to it (superusers, like the role of POSTGRES_URL, bypass it).
type PostgresRole struct {
	// Name is the role's name, unique to the test.
	Name string
	// DB is connected as the role with search_path set to the schema;
	// closed at cleanup.
	DB *sqlx.DB
	// URL reaches the schema as the role, for child processes.
	URL string
}

// AppRole creates a role for t with USAGE on the schema and SELECT,
// INSERT, UPDATE and DELETE on its tables (and use of its sequences and
// functions) as they exist now, so call it after migrating. The role and
// its privileges are dropped at cleanup.
func (p *PostgresDB) AppRole(t testing.TB) *PostgresRole {
	t.Helper()
	role := "app_" + randHex(6)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	adm, err := sqlx.Open("pgx", p.AdminURL)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	r := &PostgresRole{Name: role}
	t.Cleanup(func() {
		if r.DB != nil {
			_ = r.DB.Close()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = adm.ExecContext(ctx, `DROP OWNED BY "`+role+`"`)
		_, _ = adm.ExecContext(ctx, `DROP ROLE IF EXISTS "`+role+`"`)
		_ = adm.Close()
	})
	s := `"` + p.Schema + `"`
	for _, q := range []string{
		`CREATE ROLE "` + role + `" LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE`,
		`GRANT USAGE ON SCHEMA ` + s + ` TO "` + role + `"`,
		`GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ` + s + ` TO "` + role + `"`,
		`GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA ` + s + ` TO "` + role + `"`,
		`GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA ` + s + ` TO "` + role + `"`,
	} {
		if _, err := adm.ExecContext(ctx, q); err != nil {
			t.Fatalf("testenv: app role: %s: %v", q, err)
		}
	}
	u, err := url.Parse(p.URL)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	u.User = url.User(role)
	r.URL = u.String()
	if r.DB, err = sqlx.Open("pgx", r.URL); err != nil {
		t.Fatalf("testenv: open as %s: %v", role, err)
	}
	return r
}
