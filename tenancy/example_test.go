package tenancy_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strconv"
	"time"

	"github.com/jmoiron/sqlx"
	_ "github.com/mattn/go-sqlite3"

	"github.com/systembuilderhub/hardening"
	"github.com/systembuilderhub/hardening/tenancy"
)

// The middleware reads the tenant of the verified caller that
// hardening.RequireCaller put in the context; here a stand-in
// authenticator reads it from a header set by the test.
func ExampleNew() {
	auth := hardening.AuthenticatorFunc(func(r *http.Request) (hardening.Caller, error) {
		return hardening.Caller{Subject: "alice", Tenant: r.Header.Get("X-Verified-Org")}, nil // in a service: the checked token's claims
	})
	m, err := tenancy.New()
	if err != nil {
		panic(err)
	}
	h := hardening.RequireCaller(auth, nil)(m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, _ := tenancy.FromContext(r.Context())
		fmt.Fprint(w, "tenant ", id)
	})))

	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("X-Verified-Org", "acme")
	r.Header.Set("X-Tenant-ID", "evil") // not trusted: ignored
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	fmt.Println(w.Code, w.Body.String())

	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil))
	fmt.Println(w.Code)
	// Output:
	// 200 tenant acme
	// 401
}

// A custom error handler receives the typed errors (here a *Rejection)
// and may answer in the service's own format; the RateLimit header fields
// are already set. To keep problem+json but link the types to your own
// documentation, pass hardening.ProblemWriter{TypeBase: ...}.WriteError.
func ExampleWithErrorHandler() {
	onError := func(w http.ResponseWriter, r *http.Request, err error) {
		var rej *tenancy.Rejection
		if errors.As(err, &rej) {
			w.Header().Set("Retry-After", strconv.FormatInt(hardening.RetryAfterSeconds(rej.RetryAfter), 10))
			http.Error(w, "slow down: "+rej.Quota, http.StatusTooManyRequests)
			return
		}
		hardening.WriteError(w, r, err)
	}
	q, err := tenancy.NewQuotas(tenancy.NewMemoryStore(), tenancy.Rate("orders", 1, time.Minute),
		tenancy.WithErrorHandler(onError))
	if err != nil {
		log.Fatal(err)
	}
	h := q.RateLimit("orders")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusCreated) }))
	ctx := hardening.WithCaller(context.Background(), hardening.Caller{Subject: "alice", Tenant: "acme"})
	for range 2 {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/orders", nil).WithContext(ctx))
		fmt.Printf("%d %q RateLimit: %s\n", w.Code, w.Body.String(), w.Header().Get("RateLimit"))
	}
	// Output:
	// 201 "" RateLimit: "orders";r=0;t=60
	// 429 "slow down: orders\n" RateLimit: "orders";r=0;t=60
}

// A service declares its own quotas: a rate of orders, a concurrency limit
// of exports and a monthly budget of credits. Each refuses with its own
// reason.
func ExampleNewQuotas() {
	now := time.Date(2026, 3, 15, 12, 0, 0, 0, time.UTC)
	q, err := tenancy.NewQuotas(tenancy.NewMemoryStore(), // or sqlitestore.New(db), redisstore.New(rdb)
		tenancy.Rate("orders", 5, time.Minute),                // burst 5, then one every 12 s
		tenancy.Concurrency("exports", 2, 2*time.Minute),      // 2 at once, leases of 2 minutes
		tenancy.Budget("credits", 1_000_000, tenancy.Monthly), // per UTC calendar month
		tenancy.WithClock(func() time.Time { return now }))
	if err != nil {
		log.Fatal(err)
	}
	ctx := tenancy.WithTenant(context.Background(), "acme") // the tenant middleware does this

	for range 5 {
		_, _ = q.Allow(ctx, "orders")
	}
	_, err = q.Allow(ctx, "orders")
	fmt.Println(err)

	_, _ = q.Acquire(ctx, "exports", "export-1")
	_, _ = q.Acquire(ctx, "exports", "export-2")
	_, err = q.Acquire(ctx, "exports", "export-3")
	fmt.Println(err)
	_, _ = q.Release(ctx, "exports", "export-1")
	_, err = q.Acquire(ctx, "exports", "export-3")
	fmt.Println("after a release:", err)

	r, _ := q.Reserve(ctx, "credits", 600_000) // the work's maximum cost
	_, _ = q.Settle(ctx, r, 450_000)           // what it really cost
	_, err = q.Reserve(ctx, "credits", 600_000)
	fmt.Println(err)

	_, err = q.Allow(ctx, "invoices")
	fmt.Println(err)
	// Output:
	// tenancy: rate "orders" exhausted (5 of 5 in use; retry in 12s)
	// tenancy: concurrency "exports" at its limit (2 of 2 held)
	// after a release: <nil>
	// tenancy: budget "credits" cannot cover 600000 (450000 spent + 0 reserved of 1000000)
	// tenancy: unknown quota: "invoices" was not declared
}

// Refusals answer problem+json with the quota's reason; per-tenant
// overrides are audited.
func ExampleQuotas_SetLimits() {
	q, _ := tenancy.NewQuotas(tenancy.NewMemoryStore(), tenancy.Concurrency("exports", 1, time.Minute))
	ctx := tenancy.WithTenant(context.Background(), "acme")
	_, _ = q.Acquire(ctx, "exports", "e1")
	_, err := q.Acquire(ctx, "exports", "e2")
	w := httptest.NewRecorder()
	tenancy.WriteError(w, httptest.NewRequest(http.MethodPost, "/exports", nil), err)
	var body struct{ Reason, Detail string }
	_ = json.Unmarshal(w.Body.Bytes(), &body)
	fmt.Println(w.Code, w.Header().Get("Content-Type"), body.Reason, body.Detail)

	limits, _ := q.SetLimits(ctx, "acme", tenancy.Limits{"exports": 3}, "ops@example.com", "enterprise plan")
	fmt.Println(limits)
	_, err = q.Acquire(ctx, "exports", "e2")
	fmt.Println(err)
	page, _ := q.Audit(ctx, tenancy.AuditQuery{Tenant: "acme"})
	e := page.Entries[0]
	fmt.Println(e.Quota, e.OldValue, "->", e.NewValue, "by", e.ChangedBy)
	// Output:
	// 429 application/problem+json exports_limit_exceeded the tenant holds all of its "exports" slots
	// map[exports:3]
	// <nil>
	// exports 1 -> 3 by ops@example.com
}

func ExampleDB() {
	raw := sqlx.MustOpen("sqlite3", ":memory:")
	defer raw.Close()
	raw.MustExec(`CREATE TABLE widgets (tenant_id TEXT, name TEXT)`)
	raw.MustExec(`INSERT INTO widgets VALUES ('acme', 'anvil'), ('globex', 'gizmo')`)

	db, _ := tenancy.NewDB(raw)
	ctx := tenancy.WithTenant(context.Background(), "acme") // the middleware does this

	var names []string
	err := db.SelectContext(ctx, &names, `SELECT name FROM widgets WHERE tenant_id = :tenant_id`,
		tenancy.Args{"tenant_id": "globex"}) // ignored: the context's tenant wins
	fmt.Println(names, err)

	_, err = db.ExecContext(ctx, `DELETE FROM widgets`, nil)
	fmt.Println(err)
	// Output:
	// [anvil] <nil>
	// tenancy: query does not reference :tenant_id
}

// Wire the tenant middleware and the quota middlewares into a plain
// net/http service (the README's "Use it in your own service" snippet).
func Example_service() {
	quotas, err := tenancy.NewQuotas(tenancy.NewMemoryStore(), // or sqlitestore.New(db), redisstore.New(rdb)
		tenancy.Rate("orders", 1, time.Minute),
		tenancy.Concurrency("exports", 2, time.Minute))
	if err != nil {
		log.Fatal(err)
	}
	tenants, err := tenancy.New() // the tenant of hardening.CallerFrom(ctx); 401 without one
	if err != nil {
		log.Fatal(err)
	}
	auth := hardening.AuthenticatorFunc(func(r *http.Request) (hardening.Caller, error) {
		return hardening.Caller{Subject: "alice", Tenant: "acme"}, nil // your token check
	})
	orders := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusCreated) })
	exports := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusAccepted) })
	mux := http.NewServeMux()
	mux.Handle("POST /orders", tenants.Handler(quotas.RateLimit("orders")(orders)))           // 429 + RateLimit headers
	mux.Handle("POST /exports", tenants.Handler(quotas.ConcurrencyLimit("exports")(exports))) // a slot while it runs
	h := hardening.RequireCaller(auth, nil)(mux)

	for range 2 {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/orders", nil))
		fmt.Printf("%d RateLimit: %s Retry-After: %q\n", rec.Code, rec.Header().Get("RateLimit"), rec.Header().Get("Retry-After"))
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/exports", nil))
	fmt.Println(rec.Code)
	// Output:
	// 201 RateLimit: "orders";r=0;t=60 Retry-After: ""
	// 429 RateLimit: "orders";r=0;t=60 Retry-After: "60"
	// 202
}
