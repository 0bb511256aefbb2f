package ipc

import "golang.org/x/sys/unix"

// LOCAL_PEERCRED gives the listener's effective uid as of listen(2);
// LOCAL_PEERPID its pid.
func peerOf(fd uintptr) (Peer, error) {
	cred, err := unix.GetsockoptXucred(int(fd), unix.SOL_LOCAL, unix.LOCAL_PEERCRED)
	if err != nil {
		return Peer{}, err
	}
	p := Peer{User: uidUser(cred.Uid)}
	if pid, err := unix.GetsockoptInt(int(fd), unix.SOL_LOCAL, unix.LOCAL_PEERPID); err == nil {
		p.PID = pid
	}
	return p, nil
}
