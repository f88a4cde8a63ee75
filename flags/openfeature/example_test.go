package openfeature_test

import (
	"context"
	"fmt"

	of "github.com/open-feature/go-sdk/openfeature"
	"github.com/open-feature/go-sdk/openfeature/isolated"

	"github.com/systembuilderhub/hardening"
	"github.com/systembuilderhub/hardening/flags"
	flagsof "github.com/systembuilderhub/hardening/flags/openfeature"
)

func Example() {
	ctx := context.Background()
	fc, _ := flags.New(flags.NewMemoryStore(), flags.WithFlags(flags.Flag{Name: "llm.streaming"}))
	_ = fc.Start(ctx)
	defer fc.Close(ctx)
	_, _ = fc.Toggle(ctx, "llm.streaming", true, flags.Change{By: "alice", TenantID: "acme"})

	provider, _ := flagsof.New(fc)
	api := isolated.NewAPI() // or the global openfeature.SetProviderAndWait
	defer api.Shutdown(ctx)
	_ = api.SetProviderAndWait(ctx, provider)
	client := api.NewClient()

	d, _ := client.BooleanValueDetails(ctx, "llm.streaming", false, of.NewEvaluationContext("acme", nil))
	fmt.Println(d.Value, d.Reason)
	d, _ = client.BooleanValueDetails(ctx, "llm.streaming", false, of.NewEvaluationContext("globex", nil))
	fmt.Println(d.Value, d.Reason)
	d, _ = client.BooleanValueDetails(ctx, "missing", true, of.NewEvaluationContext("acme", nil))
	fmt.Println(d.Value, d.Reason, d.ErrorCode)

	// No tenant in the evaluation context: the verified caller's tenant,
	// which hardening.RequireCaller puts in a request's context.
	caller := hardening.WithCaller(ctx, hardening.Caller{Subject: "u1", Tenant: "acme"})
	fmt.Println(client.Boolean(caller, "llm.streaming", false, of.NewTargetlessEvaluationContext(nil)))
	// Output:
	// true TARGETING_MATCH
	// false DEFAULT
	// true ERROR FLAG_NOT_FOUND
	// true
}
