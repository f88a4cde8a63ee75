package main

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The hub's price list as a client reads it in docs/walkthrough.md: $0.002 a call,
// $0.0001 a prompt byte, $0.00002 an output byte, at most 100 output bytes.
// The stub's completion of a prompt of n bytes (n < 10) is 34 bytes long.
func listPriceUSD(promptBytes int) float64 {
	return 0.002 + 0.0001*float64(promptBytes) + 0.00002*100
}

func llmUsage(t *testing.T, url, tok, tenant string) (spent, reserved float64) {
	t.Helper()
	resp, b := call(t, "GET", url+"/api/v1/tenancy/quotas/"+tenant, tok, "")
	require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
	u := decodeBody(t, b)["usage"].(map[string]any)
	return u["llm_spent_usd"].(float64), u["llm_reserved_usd"].(float64)
}

func setLLMBudget(t *testing.T, url, adm, tenant string, usd float64) {
	t.Helper()
	resp, b := call(t, "POST", url+"/api/v1/tenancy/quotas/"+tenant+"/update", adm, fmt.Sprintf(`{"llm_monthly_budget_usd":%v,"reason":"test"}`, usd))
	require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
}

func completionBody(prompt string, maxCostUSD float64) string {
	return fmt.Sprintf(`{"prompt":%q,"max_cost_usd":%v}`, prompt, maxCostUSD)
}

// TestLLMBudgetIsPricedByTheServer: the attack of issue 13 (item 11). 20
// prompts of 1 MB (list price about $100 each) with max_cost_usd $0.000001
// used to cost $0.00002 in all; the hub now prices a request itself,
// refuses one whose price is over the caller's cap (400 max_cost_too_low,
// nothing reserved or charged), reserves the price and charges the real
// cost.
func TestLLMBudgetIsPricedByTheServer(t *testing.T) {
	tenancyModes(t, func(t *testing.T, a *app, url string) {
		tok := mintToken(t, a, "alice", "acme", false)
		adm := mintToken(t, a, "root", "ops", true)
		setLLMBudget(t, url, adm, "acme", 3000)
		big := strings.Repeat("a", 1_000_000)
		price := listPriceUSD(len(big))
		require.InDelta(t, 100.004, price, 1e-9)

		for i := range 20 {
			resp, b := call(t, "POST", url+"/api/v1/llm/completions", tok, completionBody(big, 0.000001))
			require.Equal(t, http.StatusBadRequest, resp.StatusCode, "prompt %d: %s", i, b)
			body := decodeBody(t, b)
			assert.Equal(t, "max_cost_too_low", body["reason"])
			assert.InDelta(t, price, body["price_usd"], 1e-9)
			assert.InDelta(t, 0.000001, body["max_cost_usd"], 1e-12)
		}
		spent, reserved := llmUsage(t, url, tok, "acme")
		assert.Zero(t, spent, "a refused request is never charged")
		assert.Zero(t, reserved)

		var charged float64
		for i := range 20 {
			resp, b := call(t, "POST", url+"/api/v1/llm/completions", tok, completionBody(big, 150))
			require.Equal(t, http.StatusOK, resp.StatusCode, "prompt %d: %s", i, b)
			body := decodeBody(t, b)
			assert.InDelta(t, price, body["reserved_usd"], 1e-9, "the price is reserved, not the cap")
			cost := body["cost_usd"].(float64)
			assert.InDelta(t, 0.002+100+0.00002*40, cost, 1e-9, "the real cost: call, prompt and the 40-byte output")
			charged += cost
		}
		spent, reserved = llmUsage(t, url, tok, "acme")
		assert.InDelta(t, charged, spent, 1e-6)
		assert.Greater(t, spent, 20*100.0, "20 prompts of 1 MB cost 20 times their price")
		assert.Zero(t, reserved)

		// The budget cannot cover the price: 402, nothing charged.
		setLLMBudget(t, url, adm, "acme", spent+price+1)
		resp, b := call(t, "POST", url+"/api/v1/llm/completions", tok, completionBody(big, 150))
		require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
		spent, _ = llmUsage(t, url, tok, "acme")
		resp, b = call(t, "POST", url+"/api/v1/llm/completions", tok, completionBody(big, 150))
		require.Equal(t, http.StatusPaymentRequired, resp.StatusCode, string(b))
		body := decodeBody(t, b)
		assert.Equal(t, "llm_budget_exceeded", body["reason"])
		assert.InDelta(t, price, body["requested"], 1e-9, "the request asked for its price")
		after, reserved := llmUsage(t, url, tok, "acme")
		assert.Equal(t, spent, after)
		assert.Zero(t, reserved)
	})
}

// TestLLMMaxCostBoundary: a cap equal to the price is enough; a cap one
// micro-dollar under it is refused, and that refusal does not use up the
// request's Idempotency-Key.
func TestLLMMaxCostBoundary(t *testing.T) {
	a, url := newTestApp(t)
	tok := mintToken(t, a, "alice", "acme", false)
	price := listPriceUSD(len("hello")) // $0.0045
	resp, b := call(t, "POST", url+"/api/v1/llm/completions", tok, completionBody("hello", price-0.000001), "Idempotency-Key", "k1")
	require.Equal(t, http.StatusBadRequest, resp.StatusCode, string(b))
	body := decodeBody(t, b)
	assert.Equal(t, "max_cost_too_low", body["reason"])
	assert.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"))
	assert.InDelta(t, price, body["price_usd"], 1e-12)

	resp, b = call(t, "POST", url+"/api/v1/llm/completions", tok, completionBody("hello", price), "Idempotency-Key", "k1")
	require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
	body = decodeBody(t, b)
	assert.InDelta(t, price, body["reserved_usd"], 1e-12)
	assert.InDelta(t, 0.002+0.0005+0.00002*34, body["cost_usd"], 1e-12)
	spent, reserved := llmUsage(t, url, tok, "acme")
	assert.InDelta(t, body["cost_usd"], spent, 1e-12)
	assert.Zero(t, reserved)
}

// TestLLMConcurrentReservationsAtThePrice: 20 concurrent completions
// against a budget of 10.5 prices: exactly 10 run, the rest get 402, and
// the spend stays within the budget.
func TestLLMConcurrentReservationsAtThePrice(t *testing.T) {
	tenancyModes(t, func(t *testing.T, a *app, url string) {
		tok := mintToken(t, a, "alice", "acme", false)
		adm := mintToken(t, a, "root", "ops", true)
		prompt := strings.Repeat("p", 1000)
		price := listPriceUSD(len(prompt)) // $0.104
		budget := 10.5 * price
		setLLMBudget(t, url, adm, "acme", budget)
		var wg sync.WaitGroup
		codes := make([]int, 20)
		for i := range codes {
			wg.Go(func() {
				resp, _ := call(t, "POST", url+"/api/v1/llm/completions", tok, completionBody(prompt, 1))
				codes[i] = resp.StatusCode
			})
		}
		wg.Wait()
		n := map[int]int{}
		for _, c := range codes {
			n[c]++
		}
		assert.Equal(t, map[int]int{200: 10, 402: 10}, n)
		spent, reserved := llmUsage(t, url, tok, "acme")
		assert.LessOrEqual(t, spent, budget)
		assert.InDelta(t, 10*(0.002+0.1+0.00002*37), spent, 1e-9, "the stub answers a 1000-byte prompt in 37 bytes")
		assert.Zero(t, reserved)
	})
}
