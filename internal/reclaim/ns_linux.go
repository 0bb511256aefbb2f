package reclaim

import (
	"fmt"
	"os"
)

// selfPidNS names this process's pid namespace.
var selfPidNS, _ = os.Readlink("/proc/self/ns/pid")

// samePidNS says whether pid lives in our pid namespace. A corral in a
// container may use the same state directory path (/app/.corral) and so
// the same key as one on the host: a process of another namespace is never
// taken for ours. Unknown (no such file): treated as ours only when our
// own namespace is unknown too.
func samePidNS(pid int) bool {
	ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid))
	if err != nil {
		return selfPidNS == ""
	}
	return ns == selfPidNS
}
