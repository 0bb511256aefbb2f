package proctree

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/corral-sh/corral/internal/cgroupv2"
	"github.com/corral-sh/corral/internal/procinfo"
	"github.com/corral-sh/corral/internal/reaper"
)

var detectCgroup = sync.OnceValue(cgroupv2.Detect)

// probed caches which parents were found writable, so the probe runs once
// per parent and not once per tree.
var probed sync.Map // parent dir -> error

func probeParent(self, parent string) error {
	if v, ok := probed.Load(parent); ok {
		if v == nil {
			return nil
		}
		return v.(error)
	}
	err := cgroupv2.Probe(parent)
	if err == nil {
		// Without root this is the delegation check: a group we may create
		// is useless if we may not move our children into it.
		err = cgroupv2.CanMoveInto(self, parent)
	}
	probed.Store(parent, err)
	return err
}

// DefaultCgroupParent is where trees go when Options.CgroupParent is empty:
// a "corral" group beside this process's own cgroup.
func DefaultCgroupParent() (string, error) {
	info := detectCgroup()
	if !info.Usable {
		return "", fmt.Errorf("proctree: cgroup v2 not usable: %s", info.Reason)
	}
	return filepath.Join(info.Mount, info.Self, "corral"), nil
}

// cgroupBackend keeps a tree in one leaf cgroup. The kernel guarantees
// membership: every process cloned into it, and all of their descendants,
// stay in it unless someone with write access to another group moves them.
type cgroupBackend struct {
	g   *cgroupv2.Group
	rel string // the group's path inside the hierarchy, as /proc/PID/cgroup shows it
	fd  int    // directory fd for CLONE_INTO_CGROUP, open until the child runs

	leader  int       // set once by started, before any claim can run
	unclaim func()    // removes the reaper claim
	relOnce sync.Once // release runs once
	relErr  error     // result of release
}

// usableParent returns the parent directory opts put trees' groups under,
// once checked usable (the probe runs once per parent): why not, otherwise.
func usableParent(opts Options) (string, cgroupv2.Info, error) {
	info := detectCgroup()
	if !info.Usable {
		return "", info, fmt.Errorf("proctree: cgroup v2 not usable: %s", info.Reason)
	}
	parent := opts.CgroupParent
	if parent == "" {
		parent = filepath.Join(info.Mount, info.Self, "corral")
	}
	if !strings.HasPrefix(parent, info.Mount+"/") {
		return "", info, fmt.Errorf("proctree: cgroup parent %s is not inside the cgroup2 mount %s", parent, info.Mount)
	}
	return parent, info, probeParent(filepath.Join(info.Mount, info.Self), parent)
}

func newCgroupBackend(id string, opts Options) (*cgroupBackend, error) {
	parent, info, err := usableParent(opts)
	if err != nil {
		return nil, err
	}
	g, err := cgroupv2.Create(filepath.Join(parent, LeafName(opts.Service, id)))
	if err != nil {
		return nil, fmt.Errorf("proctree: %w", err)
	}
	return &cgroupBackend{g: g, rel: strings.TrimPrefix(g.Dir, info.Mount), fd: -1}, nil
}

func (b *cgroupBackend) mechanism() Mechanism { return Cgroup }

func (b *cgroupBackend) prepare(cmd *exec.Cmd) error {
	fd, err := b.g.OpenFD()
	if err != nil {
		return fmt.Errorf("proctree: %w", err)
	}
	b.fd = fd
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.UseCgroupFD = true
	cmd.SysProcAttr.CgroupFD = fd
	// A group of its own keeps terminal signals (Ctrl-C to corral) from
	// reaching the tree behind the supervisor's back.
	if !cmd.SysProcAttr.Setsid {
		cmd.SysProcAttr.Setpgid = true
	}
	return nil
}

// admit: the leader was born in the group (CLONE_INTO_CGROUP).
func (b *cgroupBackend) admit(int) error { return nil }

func (b *cgroupBackend) container() string { return b.g.Dir }

// delivered: a signal is delivered as asked.
func (b *cgroupBackend) delivered() string { return "" }

// shimHost: the group holds every descendant; there is no shim.
func (b *cgroupBackend) shimHost() shimHost { return nil }

func (b *cgroupBackend) closeFD() {
	if b.fd >= 0 {
		unix.Close(b.fd)
		b.fd = -1
	}
}

func (b *cgroupBackend) started(pid int) {
	b.closeFD()
	b.leader = pid
	b.unclaim = reaper.Register(func(st procinfo.Stat) bool {
		if st.PID == b.leader {
			return false // exec.Cmd.Wait owns the leader's status
		}
		if st.PGID == b.leader {
			return true
		}
		p, err := procinfo.CgroupV2Path(st.PID)
		return err == nil && (p == b.rel || strings.HasPrefix(p, b.rel+"/"))
	})
}

func (b *cgroupBackend) abort() {
	b.closeFD()
	b.g.Remove()
}

// procs lists the pids in the leaf and in any group a member created below it.
func (b *cgroupBackend) procs() ([]int, error) {
	var pids []int
	err := filepath.WalkDir(b.g.Dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			if path == b.g.Dir {
				return err
			}
			return nil // a sub-group vanished while walking
		}
		if !d.IsDir() {
			return nil
		}
		ps, err := (&cgroupv2.Group{Dir: path}).Procs()
		if err == nil {
			pids = append(pids, ps...)
		}
		return nil
	})
	if err != nil {
		if cgroupv2.Gone(err) {
			return nil, nil // released: nothing left
		}
		return nil, fmt.Errorf("proctree: list %s: %w", b.g.Dir, err)
	}
	return pids, nil
}

// pids lists the members without reading each one (zombies are not in
// cgroup.procs).
func (b *cgroupBackend) pids() ([]int, error) { return b.procs() }

func (b *cgroupBackend) members() ([]member, error) {
	pids, err := b.procs()
	if err != nil {
		return nil, err
	}
	out := make([]member, 0, len(pids))
	for _, pid := range pids {
		st, err := procinfo.ReadStat(pid)
		if err != nil || st.Zombie() {
			continue
		}
		out = append(out, member{stat: st})
	}
	return out, nil
}

func (b *cgroupBackend) inGroup(pid int) bool {
	p, err := procinfo.CgroupV2Path(pid)
	return err == nil && (p == b.rel || strings.HasPrefix(p, b.rel+"/"))
}

func (b *cgroupBackend) signal(sig syscall.Signal) ([]member, error) {
	ms, err := b.members()
	if err != nil {
		return nil, err
	}
	reached := ms[:0]
	for _, m := range ms {
		if sendVerified(m.stat.PID, sig, func() bool { return b.inGroup(m.stat.PID) }) {
			reached = append(reached, m)
		}
	}
	return reached, nil
}

func (b *cgroupBackend) kill(ctx context.Context) ([]member, error) {
	ms, err := b.members()
	if err != nil {
		return nil, err
	}
	if len(ms) == 0 {
		if pop, err := b.g.Populated(); cgroupv2.Gone(err) || (err == nil && !pop) {
			return nil, nil
		}
	}
	// cgroup.kill is atomic with respect to forks: nothing born during the
	// kill escapes it, so a fork storm needs no freeze first.
	if err := b.g.Kill(); err != nil && !cgroupv2.Gone(err) {
		return ms, fmt.Errorf("proctree: %w", err)
	}
	return ms, nil
}

func (b *cgroupBackend) freeze(ctx context.Context) error {
	if err := b.g.Freeze(ctx); err != nil {
		return fmt.Errorf("proctree: %w", err)
	}
	return nil
}

func (b *cgroupBackend) thaw() error {
	if err := b.g.Thaw(); err != nil {
		return fmt.Errorf("proctree: %w", err)
	}
	return nil
}

func (b *cgroupBackend) waitEmpty(ctx context.Context) error {
	err := b.g.WaitEmpty(ctx)
	if cgroupv2.Gone(err) {
		return nil // released, hence empty
	}
	if err != nil {
		return fmt.Errorf("proctree: %w", err)
	}
	return nil
}

func (b *cgroupBackend) release() error {
	b.relOnce.Do(func() {
		b.relErr = b.g.Remove()
		if b.unclaim != nil {
			// Members' exits are counted in the cgroup before their
			// orphaned children are re-parented; keep claiming for a while
			// so late zombies are still reaped.
			time.AfterFunc(10*time.Second, b.unclaim)
			reaper.Reap()
		}
	})
	return b.relErr
}
