package sqlitex_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening/internal/sqlitex"
)

func open(t *testing.T, path string, busy time.Duration) *sqlx.DB {
	t.Helper()
	db, err := sqlitex.Open(context.Background(), path, busy)
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func TestImmediateCommitsAndRollsBack(t *testing.T) {
	ctx := context.Background()
	db := open(t, filepath.Join(t.TempDir(), "a.db"), 0)
	_, err := db.Exec("CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER)")
	require.NoError(t, err)

	require.NoError(t, sqlitex.Immediate(ctx, db, func(c *sqlx.Conn) error {
		_, err := c.ExecContext(ctx, "INSERT INTO t (id, n) VALUES (1, 1)")
		return err
	}))
	boom := errors.New("boom")
	err = sqlitex.Immediate(ctx, db, func(c *sqlx.Conn) error {
		if _, err := c.ExecContext(ctx, "UPDATE t SET n = 2"); err != nil {
			return err
		}
		return boom
	})
	assert.ErrorIs(t, err, boom)
	assert.Panics(t, func() {
		_ = sqlitex.Immediate(ctx, db, func(c *sqlx.Conn) error {
			_, _ = c.ExecContext(ctx, "UPDATE t SET n = 3")
			panic("handler bug")
		})
	})
	var n int
	require.NoError(t, db.Get(&n, "SELECT n FROM t WHERE id = 1"))
	assert.Equal(t, 1, n, "failed and panicking transactions leave no trace")
}

func TestImmediateSerialisesReadModifyWrite(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "a.db")
	db := open(t, path, 10*time.Second)
	_, err := db.Exec("CREATE TABLE c (id INTEGER PRIMARY KEY, n INTEGER); INSERT INTO c VALUES (1, 0)")
	require.NoError(t, err)
	other := open(t, path, 10*time.Second) // a second pool, as another process would have
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := db
			if i%2 == 1 {
				d = other
			}
			assert.NoError(t, sqlitex.Immediate(ctx, d, func(c *sqlx.Conn) error {
				var n int
				if err := c.GetContext(ctx, &n, "SELECT n FROM c WHERE id = 1"); err != nil {
					return err
				}
				_, err := c.ExecContext(ctx, "UPDATE c SET n = ? WHERE id = 1", n+1)
				return err
			}))
		}()
	}
	wg.Wait()
	var n int
	require.NoError(t, db.Get(&n, "SELECT n FROM c WHERE id = 1"))
	assert.Equal(t, 40, n)
}

func TestBusyAndUnique(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "a.db")
	db := open(t, path, 0)
	_, err := db.Exec("CREATE TABLE u (id INTEGER PRIMARY KEY)")
	require.NoError(t, err)
	_, err = db.Exec("INSERT INTO u VALUES (1)")
	require.NoError(t, err)
	_, err = db.Exec("INSERT INTO u VALUES (1)")
	assert.True(t, sqlitex.IsUniqueViolation(err))
	assert.False(t, sqlitex.IsBusy(err))

	impatient := open(t, path, time.Millisecond)
	release := make(chan struct{})
	held := make(chan struct{})
	go func() {
		_ = sqlitex.Immediate(ctx, db, func(*sqlx.Conn) error {
			close(held)
			<-release
			return nil
		})
	}()
	<-held
	err = sqlitex.Immediate(ctx, impatient, func(*sqlx.Conn) error { return nil })
	close(release)
	assert.True(t, sqlitex.IsBusy(err), "%v", err)
}

// TestOpenFailsClearly: each way a path can be unusable is named with what
// to do, not only SQLite's "unable to open database file".
func TestOpenFailsClearly(t *testing.T) {
	dir := t.TempDir()
	corrupt := filepath.Join(dir, "corrupt.db")
	require.NoError(t, os.WriteFile(corrupt, []byte("this is not a sqlite database, just text padding it out........................................................"), 0o600))
	notDir := filepath.Join(dir, "file")
	require.NoError(t, os.WriteFile(notDir, nil, 0o600))
	cases := map[string]struct{ path, want string }{
		"missing directory": {filepath.Join(dir, "no", "such", "dir", "a.db"), "does not exist: create it (mkdir -p " + filepath.Join(dir, "no", "such", "dir") + ")"},
		"corrupt file":      {corrupt, "is not a SQLite database"},
		"parent is a file":  {filepath.Join(notDir, "a.db"), "is not a directory"},
		"empty path":        {"", "empty database path"},
	}
	if runtime.GOOS == "linux" {
		// /proc refuses new files even to root: an unwritable directory.
		cases["unwritable directory"] = struct{ path, want string }{"/proc/hardening-test.db", "the directory /proc is not writable"}
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			db, err := sqlitex.Open(context.Background(), c.path, 0)
			require.Error(t, err)
			assert.Nil(t, db)
			assert.Contains(t, err.Error(), c.want)
		})
	}
}

// TestOpenReadOnlyDirectory: an existing database in a directory this
// process cannot write is reported as such (root writes anywhere, so this
// runs as another user only; the /proc case above runs everywhere).
func TestOpenReadOnlyDirectory(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root can write a read-only directory; TestOpenFailsClearly/unwritable_directory covers the message")
	}
	dir := filepath.Join(t.TempDir(), "ro")
	require.NoError(t, os.Mkdir(dir, 0o700))
	path := filepath.Join(dir, "a.db")
	db, err := sqlitex.Open(context.Background(), path, 0)
	require.NoError(t, err)
	require.NoError(t, db.Close())
	for _, f := range []string{path + "-wal", path + "-shm"} {
		_ = os.Remove(f)
	}
	require.NoError(t, os.Chmod(dir, 0o500))
	t.Cleanup(func() { _ = os.Chmod(dir, 0o700) })
	_, err = sqlitex.Open(context.Background(), path, 0)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "is not writable")
}

// TestImmediateQueuesInProcess: a second writer on the same db waits on the
// in-process gate, and gives up when its context ends.
func TestImmediateQueuesInProcess(t *testing.T) {
	db := open(t, filepath.Join(t.TempDir(), "g.db"), 0)
	_, err := db.Exec("CREATE TABLE t (id INTEGER PRIMARY KEY)")
	require.NoError(t, err)
	holding, release := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- sqlitex.Immediate(context.Background(), db, func(c *sqlx.Conn) error {
			close(holding)
			<-release
			_, err := c.ExecContext(context.Background(), "INSERT INTO t (id) VALUES (1)")
			return err
		})
	}()
	<-holding
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err = sqlitex.Immediate(ctx, db, func(*sqlx.Conn) error { return errors.New("must not run") })
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	close(release)
	require.NoError(t, <-done)
	require.NoError(t, sqlitex.Immediate(context.Background(), db, func(c *sqlx.Conn) error {
		_, err := c.ExecContext(context.Background(), "INSERT INTO t (id) VALUES (2)")
		return err
	}))
}

// TestOpenCreatesPrivateFiles: a database Open creates, and the -wal and
// -shm files SQLite makes beside it, are readable by their owner only
// (whatever the umask lets through of 0600), since stores keep signing keys
// in them. A file that exists keeps its mode.
func TestOpenCreatesPrivateFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "new.db")
	db := open(t, path, 0)
	_, err := db.Exec("CREATE TABLE t (id INTEGER PRIMARY KEY)")
	require.NoError(t, err)
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		require.NoError(t, err, p)
		assert.Zero(t, fi.Mode().Perm()&0o077, "%s has mode %v", p, fi.Mode().Perm())
	}

	existing := filepath.Join(dir, "existing.db")
	require.NoError(t, os.WriteFile(existing, nil, 0o600))
	require.NoError(t, os.Chmod(existing, 0o640))
	open(t, existing, 0)
	fi, err := os.Stat(existing)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o640), fi.Mode().Perm())
}
