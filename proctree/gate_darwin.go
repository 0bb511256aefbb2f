package proctree

import (
	"os/exec"

	"github.com/corral-sh/corral/internal/procinfo"
)

// startGated starts cmd and runs the gate right after: without ptrace the
// leader may already be running when the gate runs.
func startGated(cmd *exec.Cmd, b backend, id string, gate func(Gated) error) error {
	if err := cmd.Start(); err != nil {
		return err
	}
	if gate == nil {
		return nil
	}
	g := Gated{Instance: id, PID: cmd.Process.Pid, Boot: procinfo.BootID(), Mechanism: b.mechanism(), Container: b.container()}
	if st, err := procinfo.ReadStat(g.PID); err == nil {
		g.StartTicks = st.StartTicks
	}
	return gate(g)
}
