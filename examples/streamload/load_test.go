package main

import (
	"bytes"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestHelperProcess is the child client when the test re-executes itself.
func TestHelperProcess(t *testing.T) {
	if os.Getenv(clientEnv) == "" {
		t.Skip("helper process only")
	}
	if err := runClient(os.Stdin, os.Stdout); err != nil {
		t.Fatal(err)
	}
	os.Exit(0)
}

// TestSmallLoad runs the load program with a few streams: every expired
// stream must end with auth_expired.
func TestSmallLoad(t *testing.T) {
	var logs syncBuffer // the child's stderr is copied in another goroutine
	res, err := run(config{N: 50, Lead: time.Second, Concurrency: 10}, &logs)
	require.NoError(t, err, logs.String())
	assert.Equal(t, 50, res.Dropped)
	var out bytes.Buffer
	res.writeTable(&out)
	assert.Contains(t, out.String(), "extra (auth - bare)")
}
