package redisstore_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening/internal/testenv"
	"github.com/systembuilderhub/hardening/previewsec"
	"github.com/systembuilderhub/hardening/previewsec/redisstore"
)

// helperProcess runs in a child: a key ring on the shared Redis rotates at
// a fixed instant and prints the key id and a hash of its secret.
func helperProcess(url, prefix string) int {
	opt, err := redis.ParseURL(url)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	c := redis.NewClient(opt)
	defer c.Close()
	s, err := redisstore.New(c, redisstore.WithKeyPrefix(prefix))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	at := time.Date(2031, 5, 6, 0, 0, 0, 0, time.UTC)
	ring, err := previewsec.NewKeyRing(s, previewsec.WithKeyRingClock(func() time.Time { return at }))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	k, err := ring.SigningKey(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	sum := sha256.Sum256(k.Secret)
	fmt.Printf("%s %s\n", k.ID, hex.EncodeToString(sum[:]))
	return 0
}

// TestProcessesRotateToOneKey: several OS processes rotating on one Redis
// at the same instant end with one key.
func TestProcessesRotateToOneKey(t *testing.T) {
	srv := testenv.Redis(t)
	const n = 4
	outs := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), "PREVIEWSEC_HELPER_REDIS="+srv.URL, "PREVIEWSEC_HELPER_PREFIX="+srv.Prefix)
			out, err := cmd.Output()
			outs[i], errs[i] = strings.TrimSpace(string(out)), err
		}()
	}
	wg.Wait()
	for i := 0; i < n; i++ {
		require.NoError(t, errs[i])
		assert.Equal(t, outs[0], outs[i])
	}
	assert.True(t, strings.HasPrefix(outs[0], "20310506T000000Z "), outs[0])
	s, err := redisstore.New(srv.Client, redisstore.WithKeyPrefix(srv.Prefix))
	require.NoError(t, err)
	keys, err := s.Keys(context.Background(), time.Time{})
	require.NoError(t, err)
	assert.Len(t, keys, 1)
}
