package procinfo

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// On darwin the process table comes from sysctl(kern.proc.*). Resident
// memory needs libproc (cgo) and is reported as 0; StartTicks holds the start
// time in microseconds since the epoch.

func fromKinfo(k *unix.KinfoProc) Stat {
	s := Stat{
		PID:        int(k.Proc.P_pid),
		PPID:       int(k.Eproc.Ppid),
		PGID:       int(k.Eproc.Pgid),
		StartTicks: uint64(k.Proc.P_starttime.Sec)*1e6 + uint64(k.Proc.P_starttime.Usec),
		Comm:       string(bytes.TrimRight(k.Proc.P_comm[:], "\x00")),
	}
	if sid, err := unix.Getsid(s.PID); err == nil {
		s.SID = sid
	}
	switch k.Proc.P_stat {
	case 1: // SIDL
		s.State = 'R'
	case 2: // SRUN
		s.State = 'R'
	case 3: // SSLEEP
		s.State = 'S'
	case 4: // SSTOP
		s.State = 'T'
	case 5: // SZOMB
		s.State = 'Z'
	}
	return s
}

// ReadStat reads one process's entry from kern.proc.pid.
func ReadStat(pid int) (Stat, error) {
	ks, err := unix.SysctlKinfoProcSlice("kern.proc.pid", pid)
	if err != nil {
		return Stat{}, fmt.Errorf("procinfo: sysctl pid %d: %w", pid, err)
	}
	if len(ks) == 0 {
		return Stat{}, ErrNotFound
	}
	return fromKinfo(&ks[0]), nil
}

// Snapshot reads every process from kern.proc.all.
func Snapshot() ([]Stat, error) {
	scans.Add(1)
	ks, err := unix.SysctlKinfoProcSlice("kern.proc.all")
	if err != nil {
		return nil, fmt.Errorf("procinfo: sysctl kern.proc.all: %w", err)
	}
	out := make([]Stat, 0, len(ks))
	for i := range ks {
		out = append(out, fromKinfo(&ks[i]))
	}
	return out, nil
}

// PIDs lists every process id.
func PIDs() ([]int, error) {
	ss, err := Snapshot()
	if err != nil {
		return nil, err
	}
	pids := make([]int, len(ss))
	for i, s := range ss {
		pids[i] = s.PID
	}
	return pids, nil
}

// procargs returns argv and the environment from kern.procargs2: an int32
// argc, the executable path, padding NULs, argc arguments, then the
// environment.
func procargs(pid int) (argv []string, env []byte, err error) {
	b, err := unix.SysctlRaw("kern.procargs2", pid)
	if err != nil {
		if errors.Is(err, unix.ESRCH) {
			return nil, nil, ErrNotFound
		}
		return nil, nil, err
	}
	if len(b) < 4 {
		return nil, nil, fmt.Errorf("procinfo: short procargs for pid %d", pid)
	}
	argc := int(binary.LittleEndian.Uint32(b))
	b = b[4:]
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[i:]
	}
	b = bytes.TrimLeft(b, "\x00")
	for len(argv) < argc && len(b) > 0 {
		i := bytes.IndexByte(b, 0)
		if i < 0 {
			argv = append(argv, string(b))
			b = nil
			break
		}
		argv = append(argv, string(b[:i]))
		b = b[i+1:]
	}
	return argv, b, nil
}

// Cmdline returns the argument vector of pid.
func Cmdline(pid int) ([]string, error) {
	argv, _, err := procargs(pid)
	return argv, err
}

// Marker returns the value of CORRAL_INSTANCE in pid's environment, or "".
func Marker(pid int) string {
	_, env, err := procargs(pid)
	if err != nil {
		return ""
	}
	return markerIn(env)
}

// ReadMarkers returns the corral variables of pid's environment.
func ReadMarkers(pid int) Markers {
	_, env, err := procargs(pid)
	if err != nil {
		return Markers{}
	}
	return markersIn(env)
}

// BootID identifies the current boot by the kernel's boot time.
func BootID() string {
	tv, err := unix.SysctlTimeval("kern.boottime")
	if err != nil {
		return "unknown"
	}
	return fmt.Sprintf("boot-%d", tv.Sec)
}

// StartTime converts StartTicks (microseconds since the epoch) to time.
func StartTime(ticks uint64) time.Time {
	return time.UnixMicro(int64(ticks))
}
