package tenancy

import (
	"context"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"
)

// FuzzBind checks the DB wrapper's rule on arbitrary queries: a query it
// accepts names :tenant_id, and every place sqlx binds for it carries the
// context's tenant, never the caller's value or the sentinel.
func FuzzBind(f *testing.F) {
	for _, s := range []string{
		`SELECT * FROM t WHERE tenant_id = :tenant_id`,
		`SELECT * FROM t`,
		`UPDATE t SET a = :a WHERE tenant_id = :tenant_id AND b = :tenant_idx`,
		`SELECT ':tenant_id'`,
		`SELECT x::text FROM t WHERE tenant_id=:tenant_id`,
		`SELECT :tenant_id, :tenant_id`,
		`-- :tenant_id` + "\nSELECT 1",
	} {
		f.Add(s, "evil")
	}
	db := sqlx.NewDb(nil, "sqlite3")
	ctx := WithTenant(context.Background(), "acme")
	f.Fuzz(func(t *testing.T, query, callerTenant string) {
		q, args, _, err := bind(db, ctx, query, Args{"tenant_id": callerTenant, "a": 1, "tenant_idx": 2, "b": 3})
		if err != nil {
			return
		}
		if !strings.Contains(query, ":tenant_id") {
			t.Fatalf("accepted a query without :tenant_id: %q", query)
		}
		n := 0
		for _, a := range args {
			if a == any(tenantSentinel) {
				t.Fatalf("sentinel leaked into the arguments of %q", q)
			}
			if s, ok := a.(string); ok && s == "acme" {
				n++
			}
		}
		if n == 0 {
			t.Fatalf("accepted %q but bound no tenant: %v", query, args)
		}
	})
}

// FuzzParseID checks that an accepted tenant id is short and uses only the
// characters that are safe in SQL, logs, labels and Redis keys.
func FuzzParseID(f *testing.F) {
	for _, s := range []string{"acme", "a-b_c.d", "", "{x}", "a:b", strings.Repeat("a", 65), "é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseID(s)
		if err != nil {
			return
		}
		if string(id) != s || len(s) == 0 || len(s) > MaxIDLength || strings.ContainsAny(s, "{}: /\\'\"%*\x00") {
			t.Fatalf("accepted %q", s)
		}
		if !roundTrips(s) {
			t.Fatalf("context round trip of %q failed", s)
		}
	})
}

// roundTrips reports whether s survives a context round trip.
func roundTrips(s string) bool {
	id, ok := FromContext(WithTenant(context.Background(), ID(s)))
	return ok && string(id) == s
}
