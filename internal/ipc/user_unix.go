//go:build unix

package ipc

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

func userString(u User) string {
	if u.Name == "" {
		if pw, err := user.LookupId(u.ID); err == nil {
			u.Name = pw.Username
		}
	}
	if u.Name == "" {
		return "uid " + u.ID
	}
	return fmt.Sprintf("uid %s (%s)", u.ID, u.Name)
}

// uidUser is the user of uid; its name is looked up only for messages (a
// directory service could be slow, and every connection is checked).
func uidUser(uid uint32) User { return User{ID: strconv.FormatUint(uint64(uid), 10)} }

// CurrentUser is the user this process acts as (its effective uid).
func CurrentUser() (User, error) { return uidUser(uint32(os.Geteuid())), nil }

// ExpectedServer returns the only user whose daemon the client believes for
// stateDir, and why, for messages. It is the client's own effective user,
// except for root with a state directory another user owns: root may look
// after that user's daemon, and whoever owns the directory decides what
// may listen in it anyway. A root-owned directory (or one that cannot be
// read) means root: a daemon refuses a state directory that is not its
// user's, so no other user's daemon can be the right one there.
func ExpectedServer(stateDir string) (User, string) {
	me := uint32(os.Geteuid())
	if me == 0 {
		if st, err := os.Stat(stateDir); err == nil {
			if sys, ok := st.Sys().(*syscall.Stat_t); ok && sys.Uid != 0 {
				return uidUser(sys.Uid), "who owns the state directory " + stateDir
			}
		}
	}
	return uidUser(me), "who runs corral"
}

// Owner returns the owner of the file at path, not following a symlink.
func Owner(path string) (User, error) {
	st, err := os.Lstat(path)
	if err != nil {
		return User{}, fmt.Errorf("ipc: %w", err)
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return User{}, fmt.Errorf("ipc: owner of %s: %w", path, errors.ErrUnsupported)
	}
	return uidUser(sys.Uid), nil
}

// LockHolder says whether a process holds stateDir's daemon lock, and its
// pid (0 when unknown). It never takes the lock, not even for a moment: a
// daemon starting meanwhile would find it taken and give up.
func LockHolder(stateDir string) (pid int, held bool) {
	f, err := os.OpenFile(filepath.Join(stateDir, LockName), os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		return 0, false
	}
	b, _ := io.ReadAll(io.LimitReader(f, 64))
	pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	return lockHeld(st.Sys().(*syscall.Stat_t), pid)
}

// alive reports whether a process of that pid exists (EPERM: another
// user's, which exists too).
func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := unix.Kill(pid, 0)
	return err == nil || err == unix.EPERM
}
