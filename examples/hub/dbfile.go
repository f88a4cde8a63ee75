package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"
	"strings"
)

// checkPrivateDB refuses a database file (or its -wal or -shm file) that
// users other than its owner may read or write. The hub calls it when
// HUB_AUTH_SECRET is unset: the file then holds the development signing
// secret, and whoever reads it can mint admin tokens. Files that do not
// exist yet are fine: the hub creates them 0600 (see migrate.OpenSQLite).
// Windows has no such mode bits; the check is skipped there.
func checkPrivateDB(path string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	var open []string
	var mode fs.FileMode
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("DATABASE_URL: %w", err)
		}
		if perm := fi.Mode().Perm(); perm&0o077 != 0 {
			open = append(open, p)
			mode |= perm
		}
	}
	if len(open) == 0 {
		return nil
	}
	return fmt.Errorf("HUB_AUTH_SECRET is unset, so %s holds the development signing secret, but its mode %04o lets other users read it: run `chmod 600 %s`, or set HUB_AUTH_SECRET",
		open[0], mode, strings.Join(open, " "))
}
