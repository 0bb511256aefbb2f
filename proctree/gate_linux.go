package proctree

import (
	"errors"
	"fmt"
	"os/exec"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/corral-sh/corral/internal/procinfo"
	"github.com/corral-sh/corral/internal/reaper"
)

// startGated starts cmd; with a gate, the leader stops right after execve
// (PTRACE_TRACEME), gate runs, and only then is the leader released. ptrace
// requests must come from the thread that started the child, hence the
// locked thread. A program that gains privilege at execve, which our ptrace
// would strip, is held in a trampoline instead (trampoline_linux.go).
func startGated(cmd *exec.Cmd, b backend, id string, gate func(Gated) error) error {
	if gate == nil {
		return cmd.Start()
	}
	if cmd.Err == nil && useTrampoline(cmd) {
		return startTrampolined(cmd, b, id, gate)
	}
	// On a goroutine of its own that exits still locked: the runtime then
	// retires the thread. Unlocking instead would leave one idle thread per
	// concurrent start behind (a hundred services starting at once left a
	// hundred).
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		done <- startTraced(cmd, b, id, gate)
	}()
	return <-done
}

func startTraced(cmd *exec.Cmd, b backend, id string, gate func(Gated) error) error {
	cmd.SysProcAttr.Ptrace = true
	err := cmd.Start()
	cmd.SysProcAttr.Ptrace = false
	if errors.Is(err, syscall.EPERM) && cmd.Process == nil {
		// ptrace forbidden here (seccomp, yama): start, then gate at once.
		if err := cmd.Start(); err != nil {
			return err
		}
		return callGate(cmd, b, id, gate)
	}
	if err != nil {
		return err
	}
	pid := cmd.Process.Pid
	// Stopped at the gate, it cannot exit before it is protected.
	reaper.Protect(pid)
	var ws unix.WaitStatus
	if _, err := unix.Wait4(pid, &ws, unix.WALL, nil); err != nil || !ws.Stopped() {
		unix.Kill(pid, unix.SIGKILL)
		return fmt.Errorf("proctree: leader %d did not stop at the gate (%v, status %v)", pid, err, ws)
	}
	if err := callGate(cmd, b, id, gate); err != nil {
		// Killed while stopped: the program never ran.
		unix.Kill(pid, unix.SIGKILL)
		unix.PtraceDetach(pid)
		return err
	}
	if err := unix.PtraceDetach(pid); err != nil {
		unix.Kill(pid, unix.SIGKILL)
		return fmt.Errorf("proctree: release leader %d from the gate: %w", pid, err)
	}
	return nil
}

// startTrampolined starts cmd's program behind a trampoline: the leader
// waits in this binary while gate runs, then execs the program in place.
func startTrampolined(cmd *exec.Cmd, b backend, id string, gate func(Gated) error) error {
	tr, err := newTrampoline(cmd)
	if err != nil {
		return err
	}
	err = cmd.Start()
	tr.started()
	if err != nil {
		tr.close()
		return err
	}
	pid := cmd.Process.Pid
	// Blocked on its socket, it cannot exit before it is protected.
	reaper.Protect(pid)
	if err := callGate(cmd, b, id, gate); err != nil {
		// Killed in the trampoline: the program never ran.
		unix.Kill(pid, unix.SIGKILL)
		tr.close()
		return err
	}
	if err := tr.release(); err != nil {
		unix.Kill(pid, unix.SIGKILL)
		return fmt.Errorf("proctree: start %s: %w", cmd.Path, err)
	}
	return nil
}

func callGate(cmd *exec.Cmd, b backend, id string, gate func(Gated) error) error {
	g := Gated{Instance: id, PID: cmd.Process.Pid, Boot: procinfo.BootID(), Mechanism: b.mechanism()}
	if st, err := procinfo.ReadStat(g.PID); err == nil {
		g.StartTicks = st.StartTicks
	}
	g.Container = b.container()
	return gate(g)
}
