package sqlitex

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	sqlite3 "github.com/mattn/go-sqlite3"
)

// diagnose turns SQLite's words for a failed open ("unable to open database
// file", "file is not a database") into what is wrong with path and what to
// do. It looks at the file system only after the open failed; err stays
// wrapped for errors.Is/As.
func diagnose(path string, err error) error {
	if path == ":memory:" {
		return err
	}
	dir := filepath.Dir(path)
	var se sqlite3.Error
	isSQLite := errors.As(err, &se)
	if isSQLite && se.Code == sqlite3.ErrNotADB {
		return fmt.Errorf("%s is not a SQLite database (or is encrypted or corrupt): point the path at another file, "+
			"or move this one away to start empty: %w", path, err)
	}
	fi, statErr := os.Stat(dir)
	switch {
	case errors.Is(statErr, os.ErrNotExist):
		return fmt.Errorf("the directory %s does not exist: create it (mkdir -p %s) or choose a path in an existing directory: %w", dir, dir, err)
	case statErr != nil:
		return fmt.Errorf("the directory %s cannot be read: %v: %w", dir, statErr, err)
	case !fi.IsDir():
		return fmt.Errorf("%s is not a directory: choose a path in a directory: %w", dir, err)
	}
	if !writableDir(dir) {
		return fmt.Errorf("the directory %s is not writable by this process: SQLite's WAL mode creates %s-wal and %s-shm beside the database, "+
			"so the directory must be writable (chmod/chown it, or choose another path): %w", dir, filepath.Base(path), filepath.Base(path), err)
	}
	if f, openErr := os.OpenFile(path, os.O_RDWR, 0); openErr != nil {
		if errors.Is(openErr, os.ErrPermission) {
			return fmt.Errorf("%s is not writable by this process (chmod/chown it, or choose another path): %w", path, err)
		}
	} else {
		_ = f.Close()
	}
	return err
}

// writableDir reports whether a file can be created in dir.
func writableDir(dir string) bool {
	f, err := os.CreateTemp(dir, ".hardening-probe-*")
	if err != nil {
		return false
	}
	name := f.Name()
	_ = f.Close()
	_ = os.Remove(name)
	return true
}
