package statedir

import (
	"errors"
	"io/fs"
	"os"
	"syscall"
)

// Windows has no O_NOFOLLOW: a reparse point is found by Lstat instead.
const oNoFollow = 0

func isLoop(err error) bool { return errors.Is(err, errLoop) || errors.Is(err, syscall.ELOOP) }

// checkOwner is left to the ACLs on Windows: a user's profile directory is
// not writable by other users, and the named pipe carries its own security
// descriptor. Symlinks (reparse points) are still refused by Check.
func checkOwner(p string, st fs.FileInfo, self bool) error { return nil }

func tighten(dir string) error { return nil }

func openBeneath(root, rel string, flag int, perm fs.FileMode) (*os.File, error) {
	return openPortable(root, rel, flag, perm)
}

// NoFollow is 0 on Windows; Refuse checks for a reparse point instead.
const NoFollow = oNoFollow
