package ipc

import (
	"fmt"

	"golang.org/x/sys/windows"
)

// peerOf names the process that created the pipe instance fd is connected
// to and the user of its token. A token that cannot be opened (another
// user's process) falls back to the pipe's owner in its security
// descriptor, which its creator's token set.
func peerOf(fd uintptr) (Peer, error) {
	h := windows.Handle(fd)
	var pid uint32
	if err := windows.GetNamedPipeServerProcessId(h, &pid); err != nil {
		return Peer{}, fmt.Errorf("GetNamedPipeServerProcessId: %w", err)
	}
	p := Peer{PID: int(pid)}
	u, err := processUser(pid)
	if err != nil {
		sd, serr := windows.GetSecurityInfo(h, windows.SE_KERNEL_OBJECT, windows.OWNER_SECURITY_INFORMATION)
		if serr != nil {
			return Peer{}, fmt.Errorf("the user of pipe server pid %d: %v; the pipe's owner: %w", pid, err, serr)
		}
		owner, _, serr := sd.Owner()
		if serr != nil || owner == nil {
			return Peer{}, fmt.Errorf("the user of pipe server pid %d: %v; the pipe has no owner", pid, err)
		}
		u = sidUser(owner)
	}
	p.User = u
	return p, nil
}

func processUser(pid uint32) (User, error) {
	ph, err := windows.OpenProcess(windows.PROCESS_QUERY_LIMITED_INFORMATION, false, pid)
	if err != nil {
		return User{}, err
	}
	defer windows.CloseHandle(ph)
	var tok windows.Token
	if err := windows.OpenProcessToken(ph, windows.TOKEN_QUERY, &tok); err != nil {
		return User{}, err
	}
	defer tok.Close()
	tu, err := tok.GetTokenUser()
	if err != nil {
		return User{}, err
	}
	return sidUser(tu.User.Sid), nil
}
