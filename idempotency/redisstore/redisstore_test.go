package redisstore_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/systembuilderhub/hardening/idempotency"
	"github.com/systembuilderhub/hardening/idempotency/redisstore"
	"github.com/systembuilderhub/hardening/idempotency/storetest"
	"github.com/systembuilderhub/hardening/internal/testenv"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func newStore(t testing.TB) (*redisstore.Store, *testenv.RedisServer) {
	srv := testenv.Redis(t)
	s, err := redisstore.New(srv.Client, redisstore.WithPrefix(srv.Prefix))
	require.NoError(t, err)
	return s, srv
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) idempotency.Store { s, _ := newStore(t); return s })
}

func TestNewValidates(t *testing.T) {
	_, err := redisstore.New(nil)
	require.Error(t, err)
	srv := testenv.Redis(t)
	_, err = redisstore.New(srv.Client, redisstore.WithPrefix("bad{"))
	require.Error(t, err)
}
