package procinfo

import (
	"fmt"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"
)

// On Windows a process is read through its handle and the Toolhelp
// snapshot. StartTicks is the creation time as a FILETIME (100 ns since
// 1601): with the pid it identifies a process across pid reuse.

// ReadStat returns the fields of one process.
func ReadStat(pid int) (Stat, error) {
	st, err := statFromHandle(pid)
	if err != nil {
		return Stat{}, err
	}
	if pe, ok := entries()[pid]; ok {
		st.PPID = int(pe.ParentProcessID)
		st.Comm = windows.UTF16ToString(pe.ExeFile[:])
	}
	return st, nil
}

func statFromHandle(pid int) (Stat, error) {
	h, err := windows.OpenProcess(windows.PROCESS_QUERY_LIMITED_INFORMATION, false, uint32(pid))
	if err != nil {
		if err == windows.ERROR_INVALID_PARAMETER {
			return Stat{}, fmt.Errorf("%w: %d", ErrNotFound, pid)
		}
		return Stat{}, fmt.Errorf("procinfo: open process %d: %w", pid, err)
	}
	defer windows.CloseHandle(h)
	st := Stat{PID: pid, State: 'R'}
	var code uint32
	if windows.GetExitCodeProcess(h, &code) == nil && code != 259 { // STILL_ACTIVE
		// Exited, its object kept by an open handle: the zombie of Windows.
		st.State = 'Z'
	}
	var c, e, k, u windows.Filetime
	if err := windows.GetProcessTimes(h, &c, &e, &k, &u); err == nil {
		st.StartTicks = uint64(c.HighDateTime)<<32 | uint64(c.LowDateTime)
		// FILETIME durations count 100 ns units.
		ft := func(f windows.Filetime) uint64 { return uint64(f.HighDateTime)<<32 | uint64(f.LowDateTime) }
		st.CPU = time.Duration(ft(k)+ft(u)) * 100
	}
	st.RSS = WorkingSet(h)
	return st, nil
}

// entries is one Toolhelp snapshot of every process, by pid.
func entries() map[int]windows.ProcessEntry32 {
	out := map[int]windows.ProcessEntry32{}
	snap, err := windows.CreateToolhelp32Snapshot(windows.TH32CS_SNAPPROCESS, 0)
	if err != nil {
		return out
	}
	defer windows.CloseHandle(snap)
	var pe windows.ProcessEntry32
	pe.Size = uint32(unsafe.Sizeof(pe))
	for err = windows.Process32First(snap, &pe); err == nil; err = windows.Process32Next(snap, &pe) {
		out[int(pe.ProcessID)] = pe
	}
	return out
}

// StatsOf reads the listed processes with one snapshot for their parents and
// names; a process that cannot be opened any more is left out.
func StatsOf(pids []int) []Stat {
	es := entries()
	out := make([]Stat, 0, len(pids))
	for _, pid := range pids {
		st, err := statFromHandle(pid)
		if err != nil {
			continue
		}
		if pe, ok := es[pid]; ok {
			st.PPID = int(pe.ParentProcessID)
			st.Comm = windows.UTF16ToString(pe.ExeFile[:])
		}
		out = append(out, st)
	}
	return out
}

// PIDs lists every process.
func PIDs() ([]int, error) {
	es := entries()
	out := make([]int, 0, len(es))
	for pid := range es {
		if pid != 0 {
			out = append(out, pid)
		}
	}
	return out, nil
}

// Snapshot reads every process it may open.
func Snapshot() ([]Stat, error) {
	scans.Add(1)
	es := entries()
	out := make([]Stat, 0, len(es))
	for pid, pe := range es {
		st, err := statFromHandle(pid)
		if err != nil {
			continue
		}
		st.PPID = int(pe.ParentProcessID)
		st.Comm = windows.UTF16ToString(pe.ExeFile[:])
		out = append(out, st)
	}
	return out, nil
}

var (
	ntdll                         = windows.NewLazySystemDLL("ntdll.dll")
	procNtQueryInformationProcess = ntdll.NewProc("NtQueryInformationProcess")
	procGetProcessMemoryInfo      = windows.NewLazySystemDLL("kernel32.dll").NewProc("K32GetProcessMemoryInfo")
)

// processCommandLineInformation (Windows 8.1+, and wine) returns the command
// line as a UNICODE_STRING followed by its characters.
const processCommandLineInformation = 60

// Cmdline returns pid's command line split the way the C runtime splits it.
func Cmdline(pid int) ([]string, error) {
	line, err := commandLine(pid)
	if err != nil {
		return nil, err
	}
	if line == "" {
		return nil, nil
	}
	argv, err := windows.DecomposeCommandLine(line)
	if err != nil {
		return []string{line}, nil
	}
	return argv, nil
}

func commandLine(pid int) (string, error) {
	h, err := windows.OpenProcess(windows.PROCESS_QUERY_LIMITED_INFORMATION, false, uint32(pid))
	if err != nil {
		return "", fmt.Errorf("procinfo: open process %d: %w", pid, err)
	}
	defer windows.CloseHandle(h)
	buf := make([]byte, 4096)
	for {
		var n uint32
		r, _, _ := procNtQueryInformationProcess.Call(uintptr(h), processCommandLineInformation,
			uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)), uintptr(unsafe.Pointer(&n)))
		switch status := windows.NTStatus(r); {
		case status == windows.STATUS_INFO_LENGTH_MISMATCH && int(n) > len(buf) && n < 1<<20:
			buf = make([]byte, n)
			continue
		case status == windows.STATUS_INVALID_INFO_CLASS:
			// Older Windows and wine: read it from the process's PEB.
			return commandLineFromPEB(pid)
		case status != windows.STATUS_SUCCESS:
			return "", fmt.Errorf("procinfo: command line of %d: %w", pid, status)
		}
		us := (*windows.NTUnicodeString)(unsafe.Pointer(&buf[0]))
		if us.Length == 0 || us.Buffer == nil {
			return "", nil
		}
		return windows.UTF16ToString(unsafe.Slice(us.Buffer, us.Length/2)), nil
	}
}

// commandLineFromPEB reads the command line out of the process's memory:
// PEB → process parameters → CommandLine.
func commandLineFromPEB(pid int) (string, error) {
	h, err := windows.OpenProcess(windows.PROCESS_QUERY_INFORMATION|windows.PROCESS_VM_READ, false, uint32(pid))
	if err != nil {
		return "", fmt.Errorf("procinfo: open process %d for reading: %w", pid, err)
	}
	defer windows.CloseHandle(h)
	var pbi windows.PROCESS_BASIC_INFORMATION
	if err := windows.NtQueryInformationProcess(h, windows.ProcessBasicInformation,
		unsafe.Pointer(&pbi), uint32(unsafe.Sizeof(pbi)), nil); err != nil {
		return "", fmt.Errorf("procinfo: basic information of %d: %w", pid, err)
	}
	read := func(addr uintptr, dst unsafe.Pointer, size uintptr) error {
		return windows.ReadProcessMemory(h, addr, (*byte)(dst), size, nil)
	}
	var peb windows.PEB
	if err := read(uintptr(unsafe.Pointer(pbi.PebBaseAddress)), unsafe.Pointer(&peb), unsafe.Sizeof(peb)); err != nil {
		return "", fmt.Errorf("procinfo: PEB of %d: %w", pid, err)
	}
	var params windows.RTL_USER_PROCESS_PARAMETERS
	if err := read(uintptr(unsafe.Pointer(peb.ProcessParameters)), unsafe.Pointer(&params), unsafe.Sizeof(params)); err != nil {
		return "", fmt.Errorf("procinfo: parameters of %d: %w", pid, err)
	}
	n := int(params.CommandLine.Length / 2)
	if n == 0 || n > 32768 {
		return "", nil
	}
	chars := make([]uint16, n)
	if err := read(uintptr(unsafe.Pointer(params.CommandLine.Buffer)), unsafe.Pointer(&chars[0]), uintptr(2*n)); err != nil {
		return "", fmt.Errorf("procinfo: command line of %d: %w", pid, err)
	}
	return windows.UTF16ToString(chars), nil
}

// Marker is not read on Windows: another process's environment lives in its
// memory, and a job already says which tree a process belongs to.
func Marker(pid int) string { return "" }

// ReadMarkers is not implemented on this platform: trees are found by their
// container, not by markers.
func ReadMarkers(pid int) Markers { return Markers{} }

// BootID is not known on Windows; a creation time never repeats across
// boots, so (pid, creation time) alone identifies a process.
func BootID() string { return "unknown" }

// StartTime converts a FILETIME creation time.
func StartTime(ticks uint64) time.Time {
	if ticks == 0 {
		return time.Time{}
	}
	ft := windows.Filetime{HighDateTime: uint32(ticks >> 32), LowDateTime: uint32(ticks)}
	return time.Unix(0, ft.Nanoseconds())
}

type memoryCounters struct {
	CB                         uint32
	PageFaultCount             uint32
	PeakWorkingSetSize         uintptr
	WorkingSetSize             uintptr
	QuotaPeakPagedPoolUsage    uintptr
	QuotaPagedPoolUsage        uintptr
	QuotaPeakNonPagedPoolUsage uintptr
	QuotaNonPagedPoolUsage     uintptr
	PagefileUsage              uintptr
	PeakPagefileUsage          uintptr
}

// WorkingSet returns the resident memory of the process behind h.
func WorkingSet(h windows.Handle) int64 {
	var mc memoryCounters
	mc.CB = uint32(unsafe.Sizeof(mc))
	if r, _, _ := procGetProcessMemoryInfo.Call(uintptr(h), uintptr(unsafe.Pointer(&mc)), uintptr(mc.CB)); r == 0 {
		return 0
	}
	return int64(mc.WorkingSetSize)
}
