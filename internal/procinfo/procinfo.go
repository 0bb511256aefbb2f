package procinfo

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"
)

// scans counts full process-table snapshots, so tests and benchmarks can
// check that a code path does not read the whole table.
var scans atomic.Uint64

// ScanCount returns how many full snapshots this process has taken.
func ScanCount() uint64 { return scans.Load() }

// MarkerVar is the environment variable that carries a tree's instance id.
// Every process of a tree inherits it from the leader.
const MarkerVar = "CORRAL_INSTANCE"

// ServiceVar names the service a tree runs for; informational only.
const ServiceVar = "CORRAL_SERVICE"

// StateVar names the state directory (by its key) whose daemon started the
// tree: with it, a daemon that lost its journal still knows which marked
// processes are its own and which belong to another corral.
const StateVar = "CORRAL_STATE"

// ShimVar is carried by a tree's shim (the per-tree subreaper of the
// process-group tier on Linux) instead of MarkerVar: the shim is no member,
// but its descendants are, whatever they do to their own environment.
const ShimVar = "CORRAL_SHIM"

// Markers are the corral variables of one process's initial environment.
type Markers struct {
	Instance, Service, State string
	// Shim is the instance whose shim this process is.
	Shim string
}

func markersIn(env []byte) Markers {
	return Markers{Instance: envValue(env, MarkerVar), Service: envValue(env, ServiceVar), State: envValue(env, StateVar), Shim: envValue(env, ShimVar)}
}

// ErrNotFound reports that a process does not exist (any more).
var ErrNotFound = errors.New("procinfo: no such process")

// Stat holds the fields of one process that membership and accounting need.
type Stat struct {
	PID   int
	PPID  int
	PGID  int
	SID   int
	State byte // 'R', 'S', 'D', 'Z', 'T', ... as the kernel reports it
	// StartTicks is the start time in clock ticks since boot (Linux) or in
	// microseconds since the epoch (darwin). Together with PID and the boot id
	// it identifies a process across PID reuse.
	StartTicks uint64
	RSS        int64 // resident set size in bytes
	// CPU is the processor time the process used, user and system, with
	// that of the children it waited for (Linux, Windows; 0 elsewhere).
	CPU  time.Duration
	Comm string
}

// Zombie reports whether the process has exited but was not yet reaped.
func (s Stat) Zombie() bool { return s.State == 'Z' || s.State == 'X' }

// Identity names one process across PID reuse: a PID alone can be handed to
// an unrelated process after the original exits, a PID plus its start time
// on the same boot cannot.
type Identity struct {
	PID   int
	Start uint64
	Boot  string
}

func (id Identity) String() string {
	return fmt.Sprintf("pid %d (start %d, boot %s)", id.PID, id.Start, id.Boot)
}

// Identity returns the identity of the process described by s on this boot.
func (s Stat) Identity() Identity {
	return Identity{PID: s.PID, Start: s.StartTicks, Boot: BootID()}
}

// markerIn returns the value of MarkerVar in a NUL-separated environment
// block, or "" when absent.
func markerIn(env []byte) string { return envValue(env, MarkerVar) }

// envValue returns the value of name in a NUL-separated environment block.
func envValue(env []byte, name string) string {
	key := []byte(name + "=")
	for len(env) > 0 {
		var kv []byte
		if i := bytes.IndexByte(env, 0); i >= 0 {
			kv, env = env[:i], env[i+1:]
		} else {
			kv, env = env, nil
		}
		if bytes.HasPrefix(kv, key) {
			return string(kv[len(key):])
		}
	}
	return ""
}

// splitNUL splits a NUL-separated block (cmdline) into strings, dropping the
// trailing terminator.
func splitNUL(b []byte) []string {
	b = bytes.TrimRight(b, "\x00")
	if len(b) == 0 {
		return nil
	}
	parts := bytes.Split(b, []byte{0})
	out := make([]string, len(parts))
	for i, p := range parts {
		out[i] = string(p)
	}
	return out
}

// Carriers scans the process table for live processes whose instance marker
// want accepts, grouped by marker. Zombies (no environment), kernel threads
// and the calling process are skipped. It reads every candidate's
// environment: a scan for sweeps and verification, not for hot paths.
func Carriers(want func(id string) bool) (map[string][]Stat, error) {
	snap, err := Snapshot()
	if err != nil {
		return nil, err
	}
	return CarriersIn(snap, want), nil
}

// CarriersIn is Carriers over a snapshot the caller already took.
func CarriersIn(snap []Stat, want func(id string) bool) map[string][]Stat {
	self := os.Getpid()
	out := map[string][]Stat{}
	for _, st := range snap {
		if st.Zombie() || st.PID == self || st.PID <= 2 || st.PPID == 2 {
			continue
		}
		if id := Marker(st.PID); id != "" && want(id) {
			out[id] = append(out[id], st)
		}
	}
	return out
}
