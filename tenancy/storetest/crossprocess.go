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

// Cross-process shape: CrossProcs children each race CrossRacers
// goroutines for preview slots (limit CrossSlotLimit) and as many for
// reservations of 1,000 micros against a budget of CrossBudget, all in
// tenant "shared".
const (
	CrossProcs     = 4
	CrossRacers    = 50
	CrossSlotLimit = 5
	CrossBudget    = tenancy.Micros(100_000)
	crossAmount    = tenancy.Micros(1_000)
	procEnv        = "HARDENING_TENANCY_STORETEST_PROC"
)

// CrossProcessChild is the work of one child of CrossProcess on s, the
// store the child opened on the shared backend: it races for slots and
// reservations and prints what it got for the parent.
func CrossProcessChild(s tenancy.Store) {
	proc := os.Getenv(procEnv)
	var held, reserved atomic.Int64
	var wg sync.WaitGroup
	for i := range CrossRacers {
		wg.Add(2)
		go func() {
			defer wg.Done()
			r, err := s.AcquireSlot(context.Background(), tenancy.SlotRequest{Tenant: "shared", PreviewID: fmt.Sprintf("%s-p%d", proc, i), Now: T0, Lease: time.Minute, DefaultLimit: CrossSlotLimit})
			if err != nil {
				fmt.Println("ERROR", err)
				return
			}
			if r.Held {
				held.Add(1)
			}
		}()
		go func() {
			defer wg.Done()
			r, err := s.Reserve(context.Background(), tenancy.ReserveRequest{Tenant: "shared", ReservationID: fmt.Sprintf("%s-r%d", proc, i), Amount: crossAmount, Now: T0, TTL: time.Hour, DefaultBudget: CrossBudget})
			if err != nil {
				fmt.Println("ERROR", err)
				return
			}
			if r.Reserved {
				reserved.Add(1)
			}
		}()
	}
	wg.Wait()
	fmt.Printf("RESULT held=%d reserved=%d\n", held.Load(), reserved.Load())
}

// CrossProcess re-runs the test binary's TestHelperProcess in CrossProcs
// children at once, each with env added to its environment (the child
// opens the shared backend from it and calls CrossProcessChild), and
// checks that together they held exactly CrossSlotLimit slots and
// reserved exactly the budget. The caller then checks the backend itself.
func CrossProcess(t *testing.T, env ...string) {
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
	var held, reserved int
	for i, cmd := range cmds {
		require.NoError(t, cmd.Wait(), outs[i].String())
		out := outs[i].String()
		assert.NotContains(t, out, "ERROR")
		var h, r int
		for _, line := range strings.Split(out, "\n") {
			if strings.HasPrefix(line, "RESULT ") {
				_, err := fmt.Sscanf(line, "RESULT held=%d reserved=%d", &h, &r)
				require.NoError(t, err)
			}
		}
		held += h
		reserved += r
	}
	assert.Equal(t, CrossSlotLimit, held, "%d processes x %d goroutines: exactly the limit", CrossProcs, CrossRacers)
	assert.Equal(t, int(CrossBudget/crossAmount), reserved, "reservations across processes: exactly the budget's worth")
}
