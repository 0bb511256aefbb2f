//go:build unix

package statedir

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"strconv"
	"syscall"
)

const oNoFollow = syscall.O_NOFOLLOW

func isLoop(err error) bool {
	return errors.Is(err, syscall.ELOOP) || errors.Is(err, errLoop) || errors.Is(err, syscall.EXDEV)
}

func userName(uid uint32) string {
	if u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10)); err == nil {
		return fmt.Sprintf("uid %d (%s)", uid, u.Username)
	}
	return fmt.Sprintf("uid %d", uid)
}

// checkOwner applies the StrictModes rule to one directory: the state
// directory itself must be the daemon user's; a parent may also be root's.
// Neither may be writable by group or others, except a sticky parent (where
// no one can rename or remove another user's entries).
func checkOwner(p string, st fs.FileInfo, self bool) error {
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	me := uint32(os.Geteuid())
	switch {
	case sys.Uid == me:
	case !self && sys.Uid == 0:
	default:
		what := "a parent of the state directory"
		if self {
			what = "the state directory"
		}
		return fmt.Errorf("%w: %s %s is owned by %s, not by %s who runs corral: another user could replace what corral writes or reads there; use a state directory of your own (--state-dir), or fix it with: chown %d %s",
			ErrUntrusted, what, p, userName(sys.Uid), userName(me), me, p)
	}
	if st.Mode().Perm()&0o022 != 0 && !(st.Mode()&fs.ModeSticky != 0 && !self) && !privateGroupOnly(st, sys) {
		what := "a parent of the state directory"
		if self {
			what = "the state directory"
		}
		return fmt.Errorf("%w: %s %s is writable by group or others (mode %s): another user could swap the daemon's socket or lock there; fix it with: chmod go-w %s",
			ErrUntrusted, what, p, st.Mode().Perm(), p)
	}
	return nil
}

// privateGroupOnly allows a directory writable by its group (not by
// others) when that group is the user's own private group — named as the
// user, the user's primary group, as umask 002 setups make every folder
// 0775 (Debian's USERGROUPS_ENAB, Fedora): no one else is in it, as
// Debian's ssh (user-group-modes) accepts too.
func privateGroupOnly(st fs.FileInfo, sys *syscall.Stat_t) bool {
	if st.Mode().Perm()&0o002 != 0 {
		return false
	}
	u, err := user.LookupId(strconv.Itoa(os.Geteuid()))
	if err != nil || u.Gid != strconv.FormatUint(uint64(sys.Gid), 10) {
		return false
	}
	g, err := user.LookupGroupId(u.Gid)
	return err == nil && g.Name == u.Username
}

func tighten(dir string) error {
	// dir was checked to be a real directory of ours just now; an attacker
	// who could swap it in between would have to be us.
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("statedir: %w", err)
	}
	return nil
}

// NoFollow is the open flag that refuses a symlink as the last component.
const NoFollow = oNoFollow
