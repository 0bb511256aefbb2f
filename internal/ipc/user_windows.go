package ipc

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/windows"
)

func userString(u User) string {
	if u.Name == "" {
		if sid, err := windows.StringToSid(u.ID); err == nil {
			if account, domain, _, err := sid.LookupAccount(""); err == nil {
				u.Name = account
				if domain != "" {
					u.Name = domain + `\` + account
				}
			}
		}
	}
	if u.Name == "" {
		return u.ID
	}
	return fmt.Sprintf("%s (%s)", u.Name, u.ID)
}

// sidUser is the user of sid; its name is looked up only for messages (a
// domain controller could be slow, and every connection is checked).
func sidUser(sid *windows.SID) User { return User{ID: sid.String()} }

// CurrentUser is the user of this process's token.
func CurrentUser() (User, error) {
	tu, err := windows.GetCurrentProcessToken().GetTokenUser()
	if err != nil {
		return User{}, fmt.Errorf("ipc: current user: %w", err)
	}
	return sidUser(tu.User.Sid), nil
}

// ExpectedServer returns the only user whose daemon the client believes:
// on Windows always the client's own. The pipe's name derives from the
// state directory's path, not from a file another user could own.
func ExpectedServer(stateDir string) (User, string) {
	u, err := CurrentUser()
	if err != nil {
		return User{ID: "the current user"}, "who runs corral"
	}
	return u, "who runs corral"
}

// Owner is not known for a pipe this user cannot open: asking its
// security descriptor by name would connect to it.
func Owner(path string) (User, error) {
	return User{}, fmt.Errorf("ipc: owner of %s: %w", path, errors.ErrUnsupported)
}

// LockHolder says whether a process holds stateDir's daemon lock, and its
// pid, which Windows does not say (0). The lock (LockFileEx on its
// first byte) makes reading that byte fail with ERROR_LOCK_VIOLATION; the
// lock is never taken here, so a daemon starting meanwhile is not stopped.
func LockHolder(stateDir string) (pid int, held bool) {
	f, err := os.Open(filepath.Join(stateDir, LockName))
	if err != nil {
		return 0, false
	}
	defer f.Close()
	// The pid the daemon writes after locking is behind its own lock.
	_, err = f.Read(make([]byte, 1))
	return 0, errors.Is(err, windows.ERROR_LOCK_VIOLATION)
}
