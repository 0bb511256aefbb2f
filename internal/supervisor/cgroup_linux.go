package supervisor

import "github.com/corral-sh/corral/internal/procinfo"

func cgroupOf(pid int) (string, error) { return procinfo.CgroupV2Path(pid) }
