package storetest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening/tenancy"
)

// Cross-process shape, all in tenant "shared": CrossProcs children each
// race CrossRacers goroutines for slots of the concurrency quota
// CrossConcurrency (limit CrossSlotLimit), CrossRacers for units of the
// rate CrossRate (CrossRateLimit a minute, all at T0: exactly the burst is
// admitted) and CrossReservations for reservations of CrossAmount from the
// budget CrossBudget (limit CrossBudgetLimit, which fits 100 of the 1,000).
const (
	CrossProcs        = 4
	CrossRacers       = 50
	CrossReservations = 250
	CrossSlotLimit    = 5
	CrossRateLimit    = 10
	CrossAmount       = 1_000
	CrossBudgetLimit  = 100 * CrossAmount
	CrossConcurrency  = "exports"
	CrossRate         = "orders"
	CrossBudget       = "credits"
	procEnv           = "HARDENING_TENANCY_STORETEST_PROC"
)

// CrossProcessChild is the work of one child of CrossProcess on s, the
// store the child opened on the shared backend (on the request's clock):
// it races for slots, rate units and reservations and prints what it got
// for the parent.
func CrossProcessChild(s tenancy.Store) {
	proc := os.Getenv(procEnv)
	ctx := context.Background()
	var held, admitted, reserved atomic.Int64
	var wg sync.WaitGroup
	fail := func(err error) { fmt.Println("ERROR", err) }
	count := func(ok bool, err error, n *atomic.Int64) {
		if err != nil {
			fail(err)
		} else if ok {
			n.Add(1)
		}
	}
	for i := range CrossRacers {
		wg.Go(func() {
			r, err := s.AcquireSlot(ctx, SlotReq(CrossConcurrency, "shared", fmt.Sprintf("%s-p%d", proc, i), T0, CrossSlotLimit))
			count(r.Held, err, &held)
		})
		wg.Go(func() {
			r, err := s.TakeRate(ctx, RateReq(CrossRate, "shared", T0, CrossRateLimit))
			count(r.Allowed, err, &admitted)
		})
	}
	for i := range CrossReservations {
		wg.Go(func() {
			req := ReserveReq(CrossBudget, "shared", fmt.Sprintf("%s-r%d", proc, i), CrossAmount, T0, CrossBudgetLimit)
			req.TTL = time.Hour
			r, err := s.Reserve(ctx, req)
			count(r.Reserved, err, &reserved)
		})
	}
	wg.Wait()
	fmt.Printf("RESULT held=%d admitted=%d reserved=%d\n", held.Load(), admitted.Load(), reserved.Load())
}

// CrossProcess re-runs the test binary's TestHelperProcess in CrossProcs
// children at once, each with env added to its environment (the child
// opens the shared backend from it and calls CrossProcessChild), and checks
// that together they held exactly CrossSlotLimit slots, took exactly the
// rate's burst and reserved exactly the budget. It then reads the backend
// through check (the parent's own store on it) to confirm.
func CrossProcess(t *testing.T, check tenancy.Store, env ...string) {
	t.Helper()
	var cmds []*exec.Cmd
	var outs []*strings.Builder
	for i := range CrossProcs {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1", "-test.v")
		cmd.Env = append(append(os.Environ(), env...), fmt.Sprintf("%s=proc%d", procEnv, i))
		out := &strings.Builder{}
		cmd.Stdout, cmd.Stderr = out, out
		require.NoError(t, cmd.Start())
		cmds, outs = append(cmds, cmd), append(outs, out)
	}
	var held, admitted, reserved int
	for i, cmd := range cmds {
		require.NoError(t, cmd.Wait(), outs[i].String())
		out := outs[i].String()
		assert.NotContains(t, out, "ERROR")
		var h, a, r int
		for _, line := range strings.Split(out, "\n") {
			if strings.HasPrefix(line, "RESULT ") {
				_, err := fmt.Sscanf(line, "RESULT held=%d admitted=%d reserved=%d", &h, &a, &r)
				require.NoError(t, err)
			}
		}
		held, admitted, reserved = held+h, admitted+a, reserved+r
	}
	assert.Equal(t, CrossSlotLimit, held, "%d processes x %d goroutines: exactly the concurrency limit", CrossProcs, CrossRacers)
	assert.Equal(t, CrossRateLimit, admitted, "%d processes x %d goroutines: exactly the rate's burst", CrossProcs, CrossRacers)
	assert.Equal(t, CrossBudgetLimit/CrossAmount, reserved, "%d reservations across processes: exactly the budget's worth", CrossProcs*CrossReservations)

	n, err := check.SlotsHeld(t.Context(), "shared", CrossConcurrency, T0)
	require.NoError(t, err)
	assert.Equal(t, int64(CrossSlotLimit), n)
	used, err := check.RateUsed(t.Context(), RateReq(CrossRate, "shared", T0, CrossRateLimit))
	require.NoError(t, err)
	assert.Equal(t, int64(CrossRateLimit), used)
	u, err := check.BudgetUsage(t.Context(), "shared", CrossBudget, tenancy.Monthly.Key(T0), T0)
	require.NoError(t, err)
	assert.Equal(t, tenancy.BudgetUsage{Reserved: CrossBudgetLimit}, u)
}
