package procinfo

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// PortHolders returns the processes that hold a listening TCP socket (IPv4
// or IPv6) on port. It reads /proc/net/tcp{,6} for the socket inodes, then
// the fd tables of processes, so it costs a scan: use it for a preflight,
// not on a hot path. Sockets of processes we cannot inspect (another user's,
// when not root) yield no PID, but listening is still true.
func PortHolders(port int) (pids []int, listening bool, err error) {
	inodes := map[string]bool{}
	// The kernel's socket diagnostics list only listening sockets; reading
	// /proc/net/tcp walks every socket (8 ms for 1000 in TIME_WAIT here, on
	// the path of every restart), so it is the fallback.
	if err := diagListenInodes(port, inodes); err != nil {
		for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
			if err := listenInodes(f, port, inodes); err != nil && !os.IsNotExist(err) {
				return nil, false, err
			}
		}
	}
	if len(inodes) == 0 {
		return nil, false, nil
	}
	all, err := PIDs()
	if err != nil {
		return nil, true, err
	}
	var out []int
	for _, pid := range all {
		dir := procPath(pid, "fd")
		f, err := os.Open(dir)
		if err != nil {
			continue
		}
		names, _ := f.Readdirnames(-1)
		f.Close()
		for _, n := range names {
			link, err := os.Readlink(dir + "/" + n)
			if err != nil || !strings.HasPrefix(link, "socket:[") {
				continue
			}
			if inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] {
				out = append(out, pid)
				break
			}
		}
	}
	return out, true, nil
}

func listenInodes(path string, port int, into map[string]bool) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	want := fmt.Sprintf(":%04X", port)
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		// sl local rem st tx:rx tr:when retrnsmt uid timeout inode
		if len(fs) < 10 || fs[3] != "0A" || !strings.HasSuffix(fs[1], want) {
			continue
		}
		if _, err := strconv.ParseUint(fs[9], 10, 64); err == nil && fs[9] != "0" {
			into[fs[9]] = true
		}
	}
	return sc.Err()
}

// inetDiagReqV2 is struct inet_diag_req_v2 (linux/inet_diag.h).
type inetDiagReqV2 struct {
	Family   uint8
	Protocol uint8
	Ext      uint8
	Pad      uint8
	States   uint32
	ID       inetDiagSockID
}

// inetDiagSockID is struct inet_diag_sockid; ports are big-endian.
type inetDiagSockID struct {
	SPort  [2]byte
	DPort  [2]byte
	Src    [16]byte
	Dst    [16]byte
	If     uint32
	Cookie [2]uint32
}

// inetDiagMsg is struct inet_diag_msg.
type inetDiagMsg struct {
	Family  uint8
	State   uint8
	Timer   uint8
	Retrans uint8
	ID      inetDiagSockID
	Expires uint32
	RQueue  uint32
	WQueue  uint32
	UID     uint32
	Inode   uint32
}

const tcpListen = 10

// diagListenInodes adds the inodes of TCP sockets listening on port (IPv4
// and IPv6) from a NETLINK_SOCK_DIAG dump filtered to the listen state.
func diagListenInodes(port int, into map[string]bool) error {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return err
	}
	for _, family := range []uint8{unix.AF_INET, unix.AF_INET6} {
		req := inetDiagReqV2{Family: family, Protocol: unix.IPPROTO_TCP, States: 1 << tcpListen}
		hdr := unix.NlMsghdr{
			Len:   uint32(unix.SizeofNlMsghdr + unsafe.Sizeof(req)),
			Type:  unix.SOCK_DIAG_BY_FAMILY,
			Flags: unix.NLM_F_REQUEST | unix.NLM_F_DUMP,
		}
		msg := make([]byte, hdr.Len)
		*(*unix.NlMsghdr)(unsafe.Pointer(&msg[0])) = hdr
		*(*inetDiagReqV2)(unsafe.Pointer(&msg[unix.SizeofNlMsghdr])) = req
		if err := unix.Sendto(fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
			return err
		}
		if err := readDiag(fd, port, into); err != nil {
			return err
		}
	}
	return nil
}

func readDiag(fd, port int, into map[string]bool) error {
	buf := make([]byte, 64<<10)
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			return err
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return err
		}
		for _, m := range msgs {
			switch m.Header.Type {
			case unix.NLMSG_DONE:
				return nil
			case unix.NLMSG_ERROR:
				return fmt.Errorf("procinfo: sock_diag: %w", unix.Errno(-int32(binary.NativeEndian.Uint32(m.Data))))
			}
			if len(m.Data) < int(unsafe.Sizeof(inetDiagMsg{})) {
				continue
			}
			d := (*inetDiagMsg)(unsafe.Pointer(&m.Data[0]))
			if d.State == tcpListen && int(binary.BigEndian.Uint16(d.ID.SPort[:])) == port && d.Inode != 0 {
				into[strconv.FormatUint(uint64(d.Inode), 10)] = true
			}
		}
	}
}
