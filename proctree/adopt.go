package proctree

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/corral-sh/corral/internal/procinfo"
)

// AdoptOptions say where an earlier run's tree is.
type AdoptOptions struct {
	// CgroupDir is the tree's cgroup directory (cgroup tier); when it is
	// empty or gone, members are found by the instance marker instead.
	CgroupDir string
	Logger    *slog.Logger
}

// Adopt returns a Tree for the processes of an instance that an earlier
// process (a crashed daemon) started: the members of its cgroup, or every
// process carrying its instance marker and their descendants. The returned
// tree has no leader to wait for; Members, Freeze, Kill and Stop work as for
// any tree, and Done closes once it is empty.
func Adopt(instance string, o AdoptOptions) (*Tree, error) {
	if instance == "" {
		return nil, fmt.Errorf("proctree: adopt needs an instance id")
	}
	b, err := adoptBackend(instance, o)
	if err != nil {
		return nil, err
	}
	t := &Tree{id: instance, b: b, log: o.Logger, exited: make(chan struct{}), done: make(chan struct{})}
	if t.log == nil {
		t.log = slog.New(slog.DiscardHandler)
	}
	close(t.exited)
	b.started(0)
	ctx, cancel := context.WithCancel(context.Background())
	t.cancelWait = cancel
	go func() {
		if t.b.waitEmpty(ctx) == nil {
			t.b.release()
		}
		close(t.done)
	}()
	return t, nil
}

// Release stops watching an adopted tree (after a dry run, say) without
// touching its processes. Done closes. It does nothing for a started tree.
func (t *Tree) Release() {
	if t.cancelWait != nil {
		t.cancelWait()
	}
}

// SignalIdentity sends sig to pid only if it is still the process that
// started at startTicks on this boot; it reports whether it did. A PID alone
// can belong to an unrelated process by now.
// sig is as for Tree.Signal; one that is no syscall.Signal is not sent.
func SignalIdentity(pid int, startTicks uint64, sig os.Signal) bool {
	s, err := sysSignal(sig)
	if err != nil {
		return false
	}
	return sendVerified(pid, s, func() bool {
		st, err := procinfo.ReadStat(pid)
		return err == nil && st.StartTicks == startTicks && !st.Zombie()
	})
}
