package postgresstore_test

import (
	"testing"

	"github.com/systembuilderhub/hardening/internal/testenv"
)

// TestExampleRuns runs Example (which has no output check, since it needs
// a server) on a fresh schema, so the documented code is known to work.
func TestExampleRuns(t *testing.T) {
	t.Setenv("DATABASE_URL", testenv.Postgres(t).URL)
	Example()
}
