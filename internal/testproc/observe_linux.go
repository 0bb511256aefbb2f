package testproc

import (
	"bytes"
	"os"
	"strconv"
	"strings"
)

// These observers read /proc on their own, deliberately sharing no code with
// proctree or procinfo, so a bug there cannot hide a leak here.

type procEntry struct {
	pid, ppid, pgid int
	state           byte
}

func readEntry(pid int) (procEntry, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procEntry{}, false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procEntry{}, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 4 {
		return procEntry{}, false
	}
	e := procEntry{pid: pid, state: f[0][0]}
	e.ppid, _ = strconv.Atoi(f[1])
	e.pgid, _ = strconv.Atoi(f[2])
	return e, true
}

func allPIDs() []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// Carriers returns the live (non-zombie) processes whose environment holds
// CORRAL_INSTANCE=id.
func Carriers(id string) []int {
	want := []byte("CORRAL_INSTANCE=" + id + "\x00")
	var out []int
	for _, pid := range allPIDs() {
		env, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
		if err != nil || !bytes.Contains(append([]byte{0}, env...), append([]byte{0}, want...)) {
			continue
		}
		if e, ok := readEntry(pid); ok && e.state != 'Z' && e.state != 'X' {
			out = append(out, pid)
		}
	}
	return out
}

// Zombies returns zombie processes that are children of this process or
// belong to one of the given process groups.
func Zombies(pgids ...int) []int {
	self := os.Getpid()
	var out []int
	for _, pid := range allPIDs() {
		e, ok := readEntry(pid)
		if !ok || (e.state != 'Z' && e.state != 'X') {
			continue
		}
		match := e.ppid == self
		for _, g := range pgids {
			match = match || e.pgid == g
		}
		if match {
			out = append(out, pid)
		}
	}
	return out
}

// Alive reports whether pid exists and is not a zombie; stopped reports
// whether it is stopped (SIGSTOP).
func Alive(pid int) (alive, stopped bool) {
	e, ok := readEntry(pid)
	if !ok || e.state == 'Z' || e.state == 'X' {
		return false, false
	}
	return true, e.state == 'T' || e.state == 't'
}

// Group returns the process group of pid, or 0.
func Group(pid int) int {
	e, _ := readEntry(pid)
	return e.pgid
}
