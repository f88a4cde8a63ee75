package keystoretest

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

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening/previewsec"
)

// rotationInstant is when the children of RotateInProcesses rotate.
var rotationInstant = time.Date(2031, 5, 6, 0, 0, 0, 0, time.UTC)

// RotateChild is the work of one child of RotateInProcesses on s, the key
// store the child opened on the shared backend: a key ring rotates at a
// fixed instant and the child prints the key's id and a hash of its
// secret. It returns the child's exit code.
func RotateChild(s previewsec.KeyStore) int {
	ring, err := previewsec.NewKeyRing(s, previewsec.WithClock(func() time.Time { return rotationInstant }))
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

// RotateInProcesses runs n copies of the test binary at once, each with
// env added to its environment (its TestMain opens the shared backend from
// it and exits with RotateChild's code), and checks that every process
// ended with the same key, the one of the rotation instant. The caller
// then checks the backend holds that one key.
func RotateInProcesses(t *testing.T, n int, env ...string) {
	t.Helper()
	outs := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), env...)
			out, err := cmd.Output()
			outs[i], errs[i] = strings.TrimSpace(string(out)), err
		})
	}
	wg.Wait()
	for i := range n {
		require.NoError(t, errs[i])
		assert.Equal(t, outs[0], outs[i])
	}
	assert.True(t, strings.HasPrefix(outs[0], "20310506T000000Z "), outs[0])
}
