package proctree

import (
	"os/exec"

	"github.com/corral-sh/corral/internal/procinfo"
)

// startGated starts the leader suspended, puts it in its job, runs the
// gate, and only then lets it run: the program never executes outside the
// job, nor before the gate.
func startGated(cmd *exec.Cmd, b backend, id string, gate func(Gated) error) error {
	if err := cmd.Start(); err != nil {
		return err
	}
	pid := cmd.Process.Pid
	if err := b.admit(pid); err != nil {
		cmd.Process.Kill()
		return err
	}
	if gate != nil {
		g := Gated{Instance: id, PID: pid, Boot: procinfo.BootID(), Mechanism: JobObject}
		if st, err := procinfo.ReadStat(pid); err == nil {
			g.StartTicks = st.StartTicks
		}
		if err := gate(g); err != nil {
			cmd.Process.Kill()
			return err
		}
	}
	if err := resume(pid); err != nil {
		cmd.Process.Kill()
		return err
	}
	return nil
}
