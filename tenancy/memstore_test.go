package tenancy_test

import (
	"testing"

	"github.com/systembuilderhub/hardening/tenancy"
	"github.com/systembuilderhub/hardening/tenancy/storetest"
)

func TestMemoryStoreConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) tenancy.Store { return tenancy.NewMemoryStore() })
}
