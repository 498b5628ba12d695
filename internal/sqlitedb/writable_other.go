//go:build !unix

package sqlitedb

import (
	"errors"
	"io/fs"
	"os"
)

// checkWritable reports whether the database file and its -wal and -shm
// files (those that exist) may be written, by their permission bits, the
// read-only attribute where there is no access(2). It neither opens nor
// closes the files, which would drop the SQLite connections' locks.
func checkWritable(path string) error {
	for _, name := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(name)
		switch {
		case err != nil && name != path && errors.Is(err, fs.ErrNotExist):
			continue
		case err != nil:
			return err
		case fi.Mode().Perm()&0o200 == 0:
			return &fs.PathError{Op: "stat", Path: name, Err: fs.ErrPermission}
		}
	}
	return nil
}
