package postgresstore_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/systembuilderhub/hardening/internal/testenv"
)

// TestExampleRuns runs ExampleNew (which has no output check, since it
// needs a server) on a fresh schema and checks what it printed, so the
// documented code is known to work.
func TestExampleRuns(t *testing.T) {
	t.Setenv("DATABASE_URL", testenv.Postgres(t).URL)
	out := testenv.RunExample(t, ExampleNew)
	assert.Regexp(t, `^201 replay="" {"order":"ord_1"}\n201 replay="true" {"order":"ord_1"}\nrecords: 1, in flight: 0\n$`, out)
}
