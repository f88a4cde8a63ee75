package flags_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/systembuilderhub/hardening"
	"github.com/systembuilderhub/hardening/flags"
)

func Example() {
	ctx := context.Background()
	c, err := flags.New(flags.NewMemoryStore(), // or sqlitestore.New(db), redisstore.New(rdb)
		flags.WithFlags(
			flags.Flag{Name: "llm.streaming", Default: false, Description: "stream LLM answers"},
			flags.Flag{Name: "preview.device-presets", Default: true, Description: "device presets"},
		))
	if err != nil {
		panic(err)
	}
	if err := c.Start(ctx); err != nil {
		panic(err)
	}
	defer c.Close(ctx)

	fmt.Println(c.Enabled("llm.streaming", "acme", false)) // registered default

	_, _ = c.Toggle(ctx, "llm.streaming", true, flags.Change{By: "alice", TenantID: "acme", Reason: "beta customer"})
	fmt.Println(c.Evaluate("llm.streaming", "acme", false))
	fmt.Println(c.Evaluate("llm.streaming", "globex", false))
	fmt.Println(c.Evaluate("no.such.flag", "acme", true), c.Unknown())
	// Output:
	// false
	// {true override}
	// {false default}
	// {true unknown} 1
}

func ExampleClient_Toggle() {
	ctx := context.Background()
	at := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	c, _ := flags.New(flags.NewMemoryStore(),
		flags.WithFlags(flags.Flag{Name: "llm.streaming"}),
		flags.WithClock(func() time.Time { return at }))

	c.OnChange(func(r flags.Record) {
		fmt.Printf("forward to SIEM: %s %s -> %v by %s\n", r.Flag, r.TenantID, r.NewValue, r.ChangedBy)
	})
	rec, err := c.Toggle(ctx, "llm.streaming", true, flags.Change{By: "alice", TenantID: "acme", Reason: "beta"})
	if err != nil {
		panic(err)
	}
	fmt.Println(rec.ID, rec.OldValue == nil, rec.NewValue, rec.ChangedAt.Format(time.RFC3339))

	_, err = c.Toggle(ctx, "not.registered", true, flags.Change{By: "alice"})
	fmt.Println(err)
	// Output:
	// forward to SIEM: llm.streaming acme -> true by alice
	// 1 true true 2026-05-01T12:00:00Z
	// flags: unknown flag: "not.registered"
}

func ExampleClient_Audit() {
	ctx := context.Background()
	c, _ := flags.New(flags.NewMemoryStore(), flags.WithFlags(flags.Flag{Name: "llm.streaming"}))
	for i, v := range []bool{true, false, true} {
		_, _ = c.Toggle(ctx, "llm.streaming", v, flags.Change{By: fmt.Sprint("user", i)})
	}
	q := flags.AuditQuery{Flag: "llm.streaming", Limit: 2}
	for {
		page, err := c.Audit(ctx, q)
		if err != nil {
			panic(err)
		}
		for _, r := range page.Entries {
			fmt.Println(r.ID, r.ChangedBy, r.NewValue)
		}
		if page.NextCursor == "" {
			break
		}
		q.Cursor = page.NextCursor
	}
	// Output:
	// 3 user2 true
	// 2 user1 false
	// 1 user0 true
}

// Gate a handler on a flag in a plain net/http service (the README's
// "Use it in your own service" snippet): hardening.RequireCaller puts the
// verified caller in the request context, and EnabledContext evaluates for
// the caller's tenant.
func Example_service() {
	ctx := context.Background()
	c, err := flags.New(flags.NewMemoryStore(), // or sqlitestore.New(db), redisstore.New(rdb)
		flags.WithFlags(flags.Flag{Name: "checkout.v2", Default: false, Description: "the new checkout"}))
	if err != nil {
		log.Fatal(err)
	}
	if err := c.Start(ctx); err != nil { // keeps the cache fresh until Close
		log.Fatal(err)
	}
	defer c.Close(ctx)
	// Your authentication, stated once: verify the credential, return the caller.
	auth := hardening.AuthenticatorFunc(func(r *http.Request) (hardening.Caller, error) {
		tenant, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer demo-") // in a service: verify a token
		if !ok {
			return hardening.Caller{}, errors.New("no token")
		}
		return hardening.Caller{Subject: "u1", Tenant: tenant}, nil
	})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /checkout", func(w http.ResponseWriter, r *http.Request) {
		if c.EnabledContext(r.Context(), "checkout.v2", false) { // the caller's tenant
			fmt.Fprint(w, "checkout v2")
			return
		}
		fmt.Fprint(w, "checkout v1")
	})
	handler := hardening.RequireCaller(auth, nil)(mux)
	// An operator turns it on for one tenant; the change is audited (c.Audit).
	_, _ = c.Toggle(ctx, "checkout.v2", true, flags.Change{By: "ops", TenantID: "acme", Reason: "pilot"})

	for _, tenant := range []string{"acme", "globex"} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, "/checkout", nil)
		req.Header.Set("Authorization", "Bearer demo-"+tenant)
		handler.ServeHTTP(rec, req)
		fmt.Println(tenant, rec.Body)
	}
	// Output:
	// acme checkout v2
	// globex checkout v1
}

// The package's errors are hardening.Errors: an operator endpoint answers
// them with hardening.WriteError, or with its own handler (here a
// ProblemWriter linking problem types to the service's documentation).
func Example_errors() {
	ctx := context.Background()
	c, _ := flags.New(flags.NewMemoryStore(), flags.WithFlags(flags.Flag{Name: "checkout.v2"}))
	onError := hardening.ProblemWriter{TypeBase: "https://docs.example.com/errors#"}.WriteError
	toggle := func(w http.ResponseWriter, r *http.Request) {
		caller, _ := hardening.CallerFrom(r.Context())
		_, err := c.Toggle(r.Context(), r.PathValue("flag"), true, flags.Change{By: caller.Subject, TenantID: caller.Tenant})
		if err != nil {
			onError(w, r, err) // 404 flag_not_found, 400 invalid_flag_name, 503 flags_unavailable, ...
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /flags/{flag}/on", toggle)

	for _, name := range []string{"checkout.v2", "no.such.flag"} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, "/flags/"+name+"/on", nil)
		mux.ServeHTTP(rec, req.WithContext(hardening.WithCaller(ctx, hardening.Caller{Subject: "ops", Tenant: "acme"})))
		fmt.Println(rec.Code)
		fmt.Print(rec.Body) // problem+json, newline-terminated; empty for 204
	}
	_, err := c.Toggle(ctx, "no.such.flag", true, flags.Change{By: "ops"})
	fmt.Println(errors.Is(err, flags.ErrUnknownFlag))
	// Output:
	// 204
	// 404
	// {"detail":"no flag is registered under this name","instance":"/flags/no.such.flag/on","reason":"flag_not_found","status":404,"title":"Not Found","type":"https://docs.example.com/errors#flag_not_found"}
	// true
}
