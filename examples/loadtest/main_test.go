package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestSmoke runs every scenario briefly against the in-process memory
// chain and bare server: each must answer every request as expected, and
// the table must show one row per scenario. No timing is checked.
func TestSmoke(t *testing.T) {
	var logs bytes.Buffer
	res, err := run(context.Background(), config{
		Duration: 100 * time.Millisecond, Rounds: 2, Concurrency: 2,
		Scenarios: "preview,idem-first,idem-replay,quota,flags", Stores: "memory", InProcess: true,
		AllocRequests: 20,
	}, &logs)
	require.NoError(t, err, logs.String())
	checkRows(t, res, "memory")
	var md, js bytes.Buffer
	res.writeMarkdown(&md)
	res.writeJSON(&js)
	assert.Contains(t, md.String(), "| memory | idem-replay |")
	require.Len(t, res.Allocs, len(scenarios))
	for i, a := range res.Allocs {
		assert.Equal(t, scenarios[i].Name, a.Scenario)
		assert.Positive(t, a.Bare.AllocsPerReq, a.Scenario)
		// Counted, not compared: a replay skips the handler, so the chain
		// can allocate less than the bare server.
		assert.Positive(t, a.Chain.AllocsPerReq, a.Scenario)
	}
	assert.Empty(t, res.Notes)
	// summary (2 + 1 store) + load table (2 + 5) + allocations (2 + 5)
	assert.Equal(t, 3+2+len(scenarios)+2+len(scenarios), strings.Count(md.String(), "\n|"), md.String())
	assert.Contains(t, md.String(), "| store | preview GET | idempotent POST, first | replay | quota POST | flags GET | target |")

	// -spread reads such results back: two identical runs have no range.
	var files []string
	for i := range 2 {
		f := filepath.Join(t.TempDir(), fmt.Sprintf("run%d.json", i))
		require.NoError(t, os.WriteFile(f, js.Bytes(), 0o600))
		files = append(files, f)
	}
	var sp bytes.Buffer
	require.NoError(t, spreadMain(&sp, files))
	assert.Contains(t, sp.String(), "2 runs;")
	assert.Contains(t, sp.String(), "| memory | ")
	assert.Contains(t, sp.String(), fmt.Sprintf("%.2f×", res.Rows[0].Ratio))
	assert.Contains(t, sp.String(), fmt.Sprintf("| preview | %.0f |", res.Allocs[0].Bare.AllocsPerReq))
	assert.Error(t, spreadMain(&sp, nil))
	assert.Contains(t, js.String(), `"scenario": "flags"`)
}

// checkRows checks that res has one row per scenario on store, every
// request of both sides answered as expected.
func checkRows(t *testing.T, res Result, store string) {
	t.Helper()
	require.Len(t, res.Rows, len(scenarios))
	for i, row := range res.Rows {
		assert.Equal(t, scenarios[i].Name, row.Scenario)
		assert.Equal(t, store, row.Store)
		assert.Zero(t, row.Chain.Errors, "%s chain: %s", row.Scenario, row.Chain.FirstErr)
		assert.Zero(t, row.Bare.Errors, "%s bare: %s", row.Scenario, row.Bare.FirstErr)
		assert.Positive(t, row.Chain.Requests, row.Scenario)
		assert.Positive(t, row.Bare.Requests, row.Scenario)
	}
}

// TestConfigErrors checks the flag validation.
func TestConfigErrors(t *testing.T) {
	for _, c := range []config{
		{Duration: 0, Rounds: 1, Concurrency: 1, Scenarios: "flags", Stores: "memory"},
		{Duration: time.Second, Rounds: 1, Concurrency: 1, Scenarios: "nope", Stores: "memory"},
		{Duration: time.Second, Rounds: 1, Concurrency: 1, Scenarios: "flags", Stores: "redis"},
		{Duration: time.Second, Rounds: 1, Concurrency: 1, Scenarios: "flags", Stores: "mongo"},
	} {
		_, err := run(context.Background(), c, &bytes.Buffer{})
		assert.Error(t, err, "%+v", c)
	}
}

// TestFindPeersDir checks that the load test finds the nested peers module
// it runs after the load (the module itself is tested in its directory).
func TestFindPeersDir(t *testing.T) {
	dir, err := findPeersDir(context.Background())
	require.NoError(t, err)
	assert.FileExists(t, filepath.Join(dir, "go.mod"))
	assert.Equal(t, "peers", filepath.Base(dir))
}
