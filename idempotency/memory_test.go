package idempotency_test

import (
	"testing"

	"github.com/systembuilderhub/hardening/idempotency"
	"github.com/systembuilderhub/hardening/idempotency/storetest"
)

func TestMemoryStoreConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) idempotency.Store { return idempotency.NewMemoryStore() })
}
