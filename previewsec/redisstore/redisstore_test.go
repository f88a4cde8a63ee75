package redisstore_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/systembuilderhub/hardening/internal/testenv"
	"github.com/systembuilderhub/hardening/previewsec"
	"github.com/systembuilderhub/hardening/previewsec/keystoretest"
	"github.com/systembuilderhub/hardening/previewsec/redisstore"
)

func TestMain(m *testing.M) {
	if url := os.Getenv("PREVIEWSEC_HELPER_REDIS"); url != "" {
		os.Exit(helperProcess(url, os.Getenv("PREVIEWSEC_HELPER_PREFIX")))
	}
	goleak.VerifyTestMain(m)
}

func TestConformance(t *testing.T) {
	keystoretest.Run(t, func(t *testing.T) (keystoretest.Store, keystoretest.Store) {
		srv := testenv.Redis(t)
		a, err := redisstore.New(srv.Client, redisstore.WithKeyPrefix(srv.Prefix))
		require.NoError(t, err)
		b, err := redisstore.New(srv.NewClient(t), redisstore.WithKeyPrefix(srv.Prefix)) // a second replica
		require.NoError(t, err)
		return a, b
	})
}

func TestOptions(t *testing.T) {
	_, err := redisstore.New(nil)
	assert.Error(t, err)
	srv := testenv.Redis(t)
	_, err = redisstore.New(srv.Client, redisstore.WithKeyPrefix("a{b}"))
	assert.Error(t, err)
}

// TestKeysUnderPrefixAndOneHashTag checks every key the store writes starts
// with the prefix and that the two keys of each script share a hash tag.
func TestKeysUnderPrefixAndOneHashTag(t *testing.T) {
	ctx := context.Background()
	srv := testenv.Redis(t)
	s, err := redisstore.New(srv.Client, redisstore.WithKeyPrefix(srv.Prefix))
	require.NoError(t, err)
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	ring, err := previewsec.NewKeyRing(s, previewsec.WithClock(func() time.Time { return now }))
	require.NoError(t, err)
	require.NoError(t, ring.Refresh(ctx))
	require.NoError(t, s.Revoke(ctx, previewsec.Revocation{Kind: previewsec.RevokePreviewID, Value: "p", RevokedAt: now, ExpiresAt: now.Add(time.Hour)}))
	keys, err := srv.Client.Keys(ctx, srv.Prefix+"*").Result()
	require.NoError(t, err)
	require.Len(t, keys, 4)
	tags := map[string]int{}
	for _, k := range keys {
		open, close := indexByte(k, '{'), indexByte(k, '}')
		require.True(t, open == len(srv.Prefix) && close > open, k)
		tags[k[open+1:close]]++
	}
	assert.Equal(t, map[string]int{"previewsec:keys": 2, "previewsec:rev": 2}, tags)
}

func indexByte(s string, b byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == b {
			return i
		}
	}
	return -1
}
