package procinfo

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// PortHolders returns the processes that hold a listening TCP socket (IPv4
// or IPv6) on port. It reads /proc/net/tcp{,6} for the socket inodes, then
// the fd tables of processes, so it costs a scan: use it for a preflight,
// not on a hot path. Sockets of processes we cannot inspect (another user's,
// when not root) yield no PID, but listening is still true.
func PortHolders(port int) (pids []int, listening bool, err error) {
	inodes := map[string]bool{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		if err := listenInodes(f, port, inodes); err != nil && !os.IsNotExist(err) {
			return nil, false, err
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
