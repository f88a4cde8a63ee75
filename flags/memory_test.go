package flags_test

import (
	"testing"

	"github.com/systembuilderhub/hardening/flags"
	"github.com/systembuilderhub/hardening/flags/storetest"
)

func TestMemoryConformance(t *testing.T) {
	storetest.Run(t, func(*testing.T) flags.Store { return flags.NewMemoryStore() })
}

func TestMemoryReplicas(t *testing.T) {
	storetest.RunReplicas(t, func(*testing.T) (flags.Store, flags.Store) {
		s := flags.NewMemoryStore()
		return s, s
	})
}
