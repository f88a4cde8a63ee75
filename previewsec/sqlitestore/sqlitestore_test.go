package sqlitestore_test

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
	"go.uber.org/goleak"

	"github.com/systembuilderhub/hardening/internal/testenv"
	"github.com/systembuilderhub/hardening/previewsec"
	"github.com/systembuilderhub/hardening/previewsec/keystoretest"
	"github.com/systembuilderhub/hardening/previewsec/sqlitestore"
)

func TestMain(m *testing.M) {
	if os.Getenv("PREVIEWSEC_HELPER_DB") != "" {
		os.Exit(helperProcess())
	}
	goleak.VerifyTestMain(m)
}

func TestConformance(t *testing.T) {
	keystoretest.Run(t, func(t *testing.T) (keystoretest.Store, keystoretest.Store) {
		db, path := testenv.SQLiteFile(t)
		a, err := sqlitestore.New(db)
		require.NoError(t, err)
		b, err := sqlitestore.New(testenv.OpenSQLite(t, path)) // a second pool: another replica
		require.NoError(t, err)
		return a, b
	})
}

func TestNewRejectsNil(t *testing.T) {
	_, err := sqlitestore.New(nil)
	assert.Error(t, err)
}

// helperProcess runs in a child: it makes a key ring on the shared file
// rotate at a fixed instant and prints the resulting key's id and a hash of
// its secret.
func helperProcess() int {
	ctx := context.Background()
	db, err := sqlitestoreOpen(ctx, os.Getenv("PREVIEWSEC_HELPER_DB"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer db.Close()
	s, _ := sqlitestore.New(db)
	at := time.Date(2031, 5, 6, 0, 0, 0, 0, time.UTC)
	ring, err := previewsec.NewKeyRing(s, previewsec.WithKeyRingClock(func() time.Time { return at }))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	k, err := ring.SigningKey(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	sum := sha256.Sum256(k.Secret)
	fmt.Printf("%s %s\n", k.ID, hex.EncodeToString(sum[:]))
	return 0
}

// TestProcessesRotateToOneKey runs several OS processes that rotate on one
// SQLite file at the same instant: they all end with the same key.
func TestProcessesRotateToOneKey(t *testing.T) {
	_, path := testenv.SQLiteFile(t)
	const n = 4
	outs := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), "PREVIEWSEC_HELPER_DB="+path)
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
	db := testenv.OpenSQLite(t, path)
	var count int
	require.NoError(t, db.Get(&count, `SELECT count(*) FROM hardening_preview_keys`))
	assert.Equal(t, 1, count)
}
