package previewsec

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that no test leaks a goroutine (proxy tunnels, listeners,
// fake daemons).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
