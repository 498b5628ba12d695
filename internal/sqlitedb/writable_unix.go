//go:build unix

package sqlitedb

import (
	"errors"
	"io/fs"
	"syscall"
)

// wOK is access(2)'s W_OK, 2 in every POSIX system.
const wOK = 2

// checkWritable reports, with access(2), whether this process could open
// the database file and its -wal and -shm files (those that exist) for
// writing, which is what decides whether SQLite opens a new connection
// read-write or read-only. access(2) answers as open(2) would for this
// process, root included: permission bits do not stop root, but an
// immutable file (chattr +i) or a read-only mount do.
//
// It neither opens nor closes the files: closing any descriptor of a
// database file drops every POSIX lock this process holds on it, the
// SQLite connections' included.
func checkWritable(path string) error {
	for _, name := range []string{path, path + "-wal", path + "-shm"} {
		err := syscall.Access(name, wOK)
		if err == nil || (name != path && errors.Is(err, fs.ErrNotExist)) {
			continue
		}
		return &fs.PathError{Op: "access", Path: name, Err: err}
	}
	return nil
}
