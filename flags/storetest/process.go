package storetest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening/flags"
)

// Environment of the child processes started by RunCrossProcess.
const (
	envHelper  = "FLAGS_STORETEST_HELPER"
	envPerProc = "FLAGS_STORETEST_PER_PROC"
	envProcID  = "FLAGS_STORETEST_PROC_ID"
)

const crossFlag = "cross.process"

// RunCrossProcess starts procs OS processes of the test binary (running
// TestHelperProcess, which must call HelperProcess), each toggling one flag
// perProc times through its own store on the shared backend that env
// describes, while a flags.Client in this process watches s. It then checks
// that the audit chains procs*perProc records without gaps and that the
// watching client sees the last value within 1s.
func RunCrossProcess(t *testing.T, s flags.Store, procs, perProc int, env ...string) {
	t.Helper()
	ctx := context.Background()
	watcher, err := flags.New(s, flags.WithFlags(flags.Flag{Name: crossFlag}))
	require.NoError(t, err)
	require.NoError(t, watcher.Start(ctx))
	t.Cleanup(func() { assert.NoError(t, watcher.Close(context.Background())) })

	var wg sync.WaitGroup
	outs := make([][]byte, procs)
	errs := make([]error, procs)
	for p := range procs {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), env...)
		cmd.Env = append(cmd.Env, envHelper+"=1", envPerProc+"="+strconv.Itoa(perProc), envProcID+"="+strconv.Itoa(p))
		wg.Go(func() { outs[p], errs[p] = cmd.CombinedOutput() })
	}
	wg.Wait()
	for p := range procs {
		require.NoError(t, errs[p], "child %d:\n%s", p, outs[p])
	}
	recs := CheckChain(t, s, crossFlag, procs*perProc)
	last := recs[len(recs)-1].NewValue
	require.Eventually(t, func() bool {
		ev := watcher.Evaluate(crossFlag, "", !last)
		return ev.Source == flags.SourceGlobal && ev.Value == last
	}, time.Second, 5*time.Millisecond, "the watching process did not see the last toggle within 1s")
}

// HelperProcess is the child side of RunCrossProcess: call it first in
// TestHelperProcess with a function that opens the store from the
// environment. It returns at once in a normal test run.
func HelperProcess(t *testing.T, open func(t *testing.T) flags.Store) {
	if os.Getenv(envHelper) != "1" {
		return
	}
	n, err := strconv.Atoi(os.Getenv(envPerProc))
	require.NoError(t, err)
	id := os.Getenv(envProcID)
	c, err := flags.New(open(t), flags.WithFlags(flags.Flag{Name: crossFlag}))
	require.NoError(t, err)
	ctx := context.Background()
	for i := range n {
		_, err := c.Toggle(ctx, crossFlag, i%2 == 0, flags.Change{By: fmt.Sprintf("proc%s-%d", id, i)})
		require.NoError(t, err)
	}
}
