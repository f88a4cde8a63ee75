package tenancy_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/jmoiron/sqlx"
	_ "github.com/mattn/go-sqlite3"

	"github.com/systembuilderhub/hardening/tenancy"
)

// The middleware takes the tenant from an identity the service verified
// earlier; here a stand-in reads it from a header set by the test.
func ExampleNew() {
	m, err := tenancy.New(func(r *http.Request) (string, error) {
		return r.Header.Get("X-Verified-Tid"), nil // in a service: the "tid" claim of the checked token
	})
	if err != nil {
		panic(err)
	}
	h := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, _ := tenancy.FromContext(r.Context())
		fmt.Fprint(w, "tenant ", id)
	}))

	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("X-Verified-Tid", "acme")
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

func ExampleQuotas_AllowSnapshot() {
	now := time.Date(2026, 3, 15, 12, 0, 0, 0, time.UTC)
	q, _ := tenancy.NewQuotas(tenancy.NewMemoryStore(),
		tenancy.WithClock(func() time.Time { return now }),
		tenancy.WithDefaults(tenancy.Limits{ActivePreviews: 5, SnapshotsPerMinute: 2, LLMMonthlyBudget: 0}))
	ctx := tenancy.WithTenant(context.Background(), "acme")
	for range 3 {
		res, err := q.AllowSnapshot(ctx)
		h := http.Header{}
		tenancy.SetRateLimitHeaders(h, res)
		fmt.Println(err == nil, h.Get("RateLimit"), res.RetryAfter)
	}
	// Output:
	// true "snapshots";r=1;t=30 0s
	// true "snapshots";r=0;t=60 0s
	// false "snapshots";r=0;t=60 30s
}

func ExampleQuotas_ReserveLLM() {
	q, _ := tenancy.NewQuotas(tenancy.NewMemoryStore(),
		tenancy.WithDefaults(tenancy.Limits{LLMMonthlyBudget: 50_000})) // 0.05 USD
	ctx := tenancy.WithTenant(context.Background(), "acme")

	res, err := q.ReserveLLM(ctx, 20_000) // the call's maximum cost
	if err != nil {
		panic(err)
	}
	// ... call the model ...
	if _, err := q.SettleLLM(ctx, res, 7_500); err != nil { // its real cost
		panic(err)
	}
	u, _ := q.Usage(ctx, "acme")
	fmt.Println(u.LLMSpent, u.LLMReserved)

	_, err = q.ReserveLLM(ctx, 45_000)
	fmt.Println(err)
	// Output:
	// 7500 0
	// tenancy: quota llm_budget exceeded (7500 of 50000)
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

func ExampleQuotas_AcquirePreview() {
	q, _ := tenancy.NewQuotas(tenancy.NewMemoryStore(),
		tenancy.WithDefaults(tenancy.Limits{ActivePreviews: 2, SnapshotsPerMinute: 10, LLMMonthlyBudget: 0}))
	ctx := tenancy.WithTenant(context.Background(), "acme")
	for _, id := range []string{"p1", "p2", "p1", "p3"} {
		slot, err := q.AcquirePreview(ctx, id)
		fmt.Println(id, err == nil, slot.Current)
	}
	_, _ = q.ReleasePreview(ctx, "p1")
	_, err := q.AcquirePreview(ctx, "p3")
	fmt.Println("p3 after release:", err == nil)

	// An HTTP handler answers a refusal with the problem+json response.
	_, err = q.AcquirePreview(ctx, "p4")
	w := httptest.NewRecorder()
	tenancy.WriteError(w, httptest.NewRequest(http.MethodPost, "/previews", nil), err)
	fmt.Println(w.Code, w.Header().Get("Content-Type"))
	// Output:
	// p1 true 1
	// p2 true 2
	// p1 true 2
	// p3 false 2
	// p3 after release: true
	// 429 application/problem+json
}

// Wire the tenant middleware and a quota into a plain net/http service (the
// README's "Embed it in your service" snippet).
func Example_service() {
	quotas, err := tenancy.NewQuotas(tenancy.NewMemoryStore(), // or sqlitestore.New(db), redisstore.New(rdb)
		tenancy.WithDefaults(tenancy.Limits{ActivePreviews: 5, SnapshotsPerMinute: 1, LLMMonthlyBudget: 0}))
	if err != nil {
		log.Fatal(err)
	}
	tenants, err := tenancy.New(func(r *http.Request) (string, error) {
		return "acme", nil // the tenant of the credential your authentication verified
	})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("POST /snapshots", tenants.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res, err := quotas.AllowSnapshot(r.Context()) // the tenant comes from the context
		tenancy.SetRateLimitHeaders(w.Header(), res)
		if err != nil {
			tenancy.WriteError(w, r, err) // 429 problem+json with Retry-After
			return
		}
		w.WriteHeader(http.StatusCreated)
	})))

	for range 2 {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/snapshots", nil))
		fmt.Printf("%d RateLimit: %s Retry-After: %q\n", rec.Code, rec.Header().Get("RateLimit"), rec.Header().Get("Retry-After"))
	}
	// Output:
	// 201 RateLimit: "snapshots";r=0;t=60 Retry-After: ""
	// 429 RateLimit: "snapshots";r=0;t=60 Retry-After: "60"
}
