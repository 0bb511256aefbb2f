package procinfo

import (
	"encoding/binary"
	"fmt"
	"unsafe"

	"golang.org/x/sys/windows"
)

var procGetExtendedTcpTable = windows.NewLazySystemDLL("iphlpapi.dll").NewProc("GetExtendedTcpTable")

const (
	tcpTableOwnerPIDListener = 3 // TCP_TABLE_OWNER_PID_LISTENER
	afINET                   = 2
	afINET6                  = 23
)

// PortHolders returns the processes listening on TCP port (IPv4 or IPv6),
// from the owner-PID TCP tables.
func PortHolders(port int) (pids []int, listening bool, err error) {
	seen := map[int]bool{}
	for _, af := range []uint32{afINET, afINET6} {
		// Row layouts (MIB_TCPROW_OWNER_PID / MIB_TCP6ROW_OWNER_PID): the
		// local port (network order, in a DWORD) and the owning pid sit at
		// these offsets.
		rowSize, portOff, pidOff := 24, 8, 20
		if af == afINET6 {
			rowSize, portOff, pidOff = 56, 20, 52
		}
		var size uint32
		procGetExtendedTcpTable.Call(0, uintptr(unsafe.Pointer(&size)), 0, uintptr(af), tcpTableOwnerPIDListener, 0)
		if size == 0 {
			continue
		}
		buf := make([]byte, size+1024)
		size = uint32(len(buf))
		r, _, _ := procGetExtendedTcpTable.Call(uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&size)), 0, uintptr(af), tcpTableOwnerPIDListener, 0)
		if r != 0 {
			if af == afINET6 {
				continue // no IPv6 stack
			}
			return nil, false, fmt.Errorf("procinfo: GetExtendedTcpTable: error %d", r)
		}
		n := int(binary.LittleEndian.Uint32(buf))
		for i := 0; i < n; i++ {
			row := buf[4+i*rowSize:]
			if len(row) < rowSize {
				break
			}
			p := int(row[portOff])<<8 | int(row[portOff+1])
			if p != port {
				continue
			}
			listening = true
			pid := int(binary.LittleEndian.Uint32(row[pidOff:]))
			if pid != 0 && !seen[pid] {
				seen[pid] = true
				pids = append(pids, pid)
			}
		}
	}
	return pids, listening, nil
}
