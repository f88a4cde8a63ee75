package sqlitestore_test

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

	"github.com/systembuilderhub/hardening/internal/testenv"
	"github.com/systembuilderhub/hardening/tenancy"
	"github.com/systembuilderhub/hardening/tenancy/sqlitestore"
	"github.com/systembuilderhub/hardening/tenancy/storetest"
)

const helperEnv = "TENANCY_SQLITE_HELPER_DB"

// TestHelperProcess is not a test: TestCrossProcess runs the test binary
// again with helperEnv set, and this function is the child's work. Each
// child races 50 goroutines for preview slots (limit 5) and 50 for budget
// reservations (budget fits 100 across all children), then prints what it
// got.
func TestHelperProcess(t *testing.T) {
	path := os.Getenv(helperEnv)
	if path == "" {
		return
	}
	s, err := sqlitestore.New(testenv.OpenSQLite(t, path))
	require.NoError(t, err)
	proc := os.Getenv("TENANCY_HELPER_PROC")
	var held, reserved atomic.Int64
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			r, err := s.AcquireSlot(context.Background(), tenancy.SlotRequest{Tenant: "shared", PreviewID: fmt.Sprintf("%s-p%d", proc, i), Now: storetest.T0, Lease: time.Minute, DefaultLimit: 5})
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
			r, err := s.Reserve(context.Background(), tenancy.ReserveRequest{Tenant: "shared", ReservationID: fmt.Sprintf("%s-r%d", proc, i), Amount: 1_000, Now: storetest.T0, TTL: time.Hour, DefaultBudget: 100_000})
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

func TestCrossProcess(t *testing.T) {
	db, path := testenv.SQLiteFile(t)
	var cmds []*exec.Cmd
	var outs []*strings.Builder
	for i := range 4 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), helperEnv+"="+path, fmt.Sprintf("TENANCY_HELPER_PROC=proc%d", i))
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
	assert.Equal(t, 5, held, "4 processes x 50 goroutines on one SQLite file: exactly the limit")
	assert.Equal(t, 100, reserved, "200 reservations across processes: exactly the budget's worth")
	var rows int
	require.NoError(t, db.Get(&rows, `SELECT count(*) FROM hardening_active_previews WHERE tenant_id = 'shared'`))
	assert.Equal(t, 5, rows)
	var sum int64
	require.NoError(t, db.Get(&sum, `SELECT SUM(amount_micros) FROM hardening_llm_reservations WHERE tenant_id = 'shared'`))
	assert.Equal(t, int64(100_000), sum)
}
