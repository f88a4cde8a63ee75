package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/systembuilderhub/hardening"
	"github.com/systembuilderhub/hardening/tenancy"
)

// The hub's LLM price list, in micro-dollars (the unit of tenancy budgets).
// Bytes stand in for tokens. The hub prices every completion itself: the
// price of a request is its prompt plus the largest output the hub allows
// (llmMaxOutputBytes); the hub reserves that price from the tenant's budget
// and charges the real cost (the prompt plus the output actually returned).
// The caller's max_cost_usd is only a cap: a request whose price is over it
// is refused (400 max_cost_too_low), never charged less.
const (
	// llmMicrosPerCall is the fee of one completion ($0.002).
	llmMicrosPerCall = 2_000
	// llmMicrosPerPromptByte is the price of a prompt byte ($0.0001, so a
	// 1 MB prompt costs about $100).
	llmMicrosPerPromptByte = 100
	// llmMicrosPerOutputByte is the price of an output byte ($0.00002).
	llmMicrosPerOutputByte = 20
	// llmMaxOutputBytes is the longest completion the hub asks the model
	// for; a longer answer is cut to it.
	llmMaxOutputBytes = 100
)

// llmCost is the cost of a completion with these byte counts.
func llmCost(promptBytes, outputBytes int) tenancy.Micros {
	return tenancy.Micros(llmMicrosPerCall + llmMicrosPerPromptByte*int64(promptBytes) + llmMicrosPerOutputByte*int64(outputBytes))
}

// llmPrice is the most a completion of a promptBytes-byte prompt can cost:
// what the hub reserves before the call.
func llmPrice(promptBytes int) tenancy.Micros { return llmCost(promptBytes, llmMaxOutputBytes) }

// modelClient is where a real LLM provider plugs in: it runs the prompt and
// returns at most maxOutputBytes of completion. The hub prices the call
// from the prompt and the completion (llmCost).
type modelClient interface {
	Complete(ctx context.Context, prompt string, maxOutputBytes int) (text string, err error)
}

// stubModel is the hub's stand-in model: deterministic and free of network.
// A delay (HUB_STUB_MODEL_DELAY) makes each call take that long, like a
// real model; a cancelled request ends the wait with an error.
type stubModel struct{ delay time.Duration }

func (m stubModel) Complete(ctx context.Context, prompt string, maxOutputBytes int) (string, error) {
	if m.delay > 0 {
		t := time.NewTimer(m.delay)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-t.C:
		}
	}
	return truncateUTF8(fmt.Sprintf("stub completion of a %d-byte prompt", len(prompt)), maxOutputBytes), nil
}

// truncateUTF8 cuts s to at most n bytes on a rune boundary.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

// completionRequest is the body of POST /api/v1/llm/completions.
type completionRequest struct {
	Prompt     string   `json:"prompt"`
	MaxCostUSD *float64 `json:"max_cost_usd"`
}

// validate requires a prompt and a positive, representable max cost that
// covers the request's price (maxCostTooLowError otherwise).
func (req *completionRequest) validate() error {
	if req.Prompt == "" {
		return errors.New("prompt is required")
	}
	if req.MaxCostUSD == nil || *req.MaxCostUSD <= 0 || math.IsInf(*req.MaxCostUSD, 0) {
		return errors.New("max_cost_usd must be a positive amount")
	}
	maxCost, err := tenancy.MicrosFromUSD(*req.MaxCostUSD)
	if err != nil || maxCost <= 0 {
		return errors.New("max_cost_usd must be at least 0.000001 and reasonable")
	}
	if price := llmPrice(len(req.Prompt)); price > maxCost {
		return &maxCostTooLowError{price: price, maxCost: maxCost}
	}
	return nil
}

// maxCostTooLowError is a completion whose price is over the caller's
// max_cost_usd: 400 max_cost_too_low with price_usd and max_cost_usd.
type maxCostTooLowError struct{ price, maxCost tenancy.Micros }

func (e *maxCostTooLowError) Error() string {
	usd := func(m tenancy.Micros) string { return strconv.FormatFloat(m.USD(), 'f', -1, 64) }
	return fmt.Sprintf("the price of this request, $%s, is over max_cost_usd $%s", usd(e.price), usd(e.maxCost))
}

func (e *maxCostTooLowError) problem() hardening.Problem {
	return hardening.NewProblem(http.StatusBadRequest, "max_cost_too_low", e.Error()+"; raise max_cost_usd or shorten the prompt").
		With("price_usd", e.price.USD()).With("max_cost_usd", e.maxCost.USD())
}

func (a *app) completionHandler(w http.ResponseWriter, r *http.Request) {
	var req completionRequest
	if !decodeJSON(w, r, &req) { // validate checked the price against the cap
		return
	}
	price := llmPrice(len(req.Prompt))
	ctx := r.Context()
	t := a.tenancy()
	res, err := t.quotas.Reserve(ctx, quotaLLM, int64(price))
	if err != nil {
		tenancy.WriteError(w, r, err)
		return
	}
	text, err := t.model.Complete(ctx, req.Prompt, llmMaxOutputBytes)
	// Settling must not be cut short by a client that went away.
	done := context.WithoutCancel(ctx)
	if err != nil {
		if _, cerr := t.quotas.Cancel(done, res); cerr != nil {
			a.log.ErrorContext(ctx, "cancel llm reservation", "err", cerr)
		}
		a.log.ErrorContext(ctx, "model call failed", "err", err)
		hardening.WriteProblem(w, r, hardening.NewProblem(http.StatusBadGateway, "model_unavailable", "the model call failed; nothing was charged"))
		return
	}
	text = truncateUTF8(text, llmMaxOutputBytes) // a model that overran its cap is not paid for it
	cost := llmCost(len(req.Prompt), len(text))
	if _, err := t.quotas.Settle(done, res, int64(cost)); err != nil {
		tenancy.WriteError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"completion": text, "cost_usd": cost.USD(), "reserved_usd": price.USD()})
}
