package ipc

import "golang.org/x/sys/unix"

// SO_PEERCRED on a connected socket gives the credentials the listener had
// when it called listen(2), whatever it writes.
func peerOf(fd uintptr) (Peer, error) {
	cred, err := unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	if err != nil {
		return Peer{}, err
	}
	return Peer{PID: int(cred.Pid), User: uidUser(cred.Uid)}, nil
}
