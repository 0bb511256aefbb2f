package proctree

// ForceGate makes Start hold gated leaders under ptrace ("ptrace") or in a
// trampoline ("trampoline") whatever their executable, or choose again
// (""); it returns the previous setting's restore.
func ForceGate(kind string) (restore func()) {
	v := map[string]int32{"": gateChoose, "ptrace": gatePtrace, "trampoline": gateTrampoline}[kind]
	old := forceGate.Swap(v)
	return func() { forceGate.Store(old) }
}

// TracerKeepsPrivileges and PrivilegedExecutable are the two halves of the
// choice of gate.
var (
	TracerKeepsPrivileges = tracerKeepsPrivileges
	PrivilegedExecutable  = privilegedExecutable
)
