package supervisor

import (
	"context"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/corral-sh/corral/internal/cgroupv2"
	"github.com/corral-sh/corral/internal/journal"
	"github.com/corral-sh/corral/internal/procinfo"
	"github.com/corral-sh/corral/internal/reaper"
	"github.com/corral-sh/corral/proctree"
)

// Stray is a process descended from the daemon that no live tree holds.
//
// The daemon is a child subreaper, and only its trees descend from it, so
// every such process is one of its trees' by construction: an orphan a
// tree handed to it (its shim was killed, or it ran without one) that left
// its tree's group and rewrote its environment, with whatever descends from
// it. What is not a stray: a child some Wait collects (reaper.Protected: a
// tree's leader or shim, an exec probe's, the keeper, the nvidia-smi the
// GPU reader runs), a member of a live tree (a cgroup tree's orphans stay
// in their group), and a child the daemon already had when its
// supervisor was made (inherited across exec: `helper & exec corral
// daemon`; its start time says when it was forked, so it may well be
// younger than the daemon). As PID 1 of a container the premise fails:
// every orphan of the namespace comes to us (docker exec's too), so a stray
// that nothing ties to a tree is listed but neither killed nor taken as a
// sign that a stop was incomplete.
type Stray struct {
	PID        int       `json:"pid"`
	PPID       int       `json:"ppid"`
	PGID       int       `json:"pgid"`
	Start      time.Time `json:"start"`
	StartTicks uint64    `json:"start_ticks"`
	Cmdline    []string  `json:"cmdline"`
	// Service and Instance name its tree where something says whose it
	// is; both are "" otherwise.
	Service  string `json:"service,omitempty"`
	Instance string `json:"instance,omitempty"`
	// AttributedBy says what named its tree: "marker" (its instance
	// marker), "process group" (the group of a live tree's leader),
	// "ancestry" (a stray it descends from was attributed); "" when
	// nothing does.
	AttributedBy string `json:"attributed_by,omitempty"`
}

func (st Stray) describe() string {
	who := "no known tree"
	if st.Instance != "" {
		who = fmt.Sprintf("%s (instance %s, by %s)", orUnknown(st.Service), st.Instance, st.AttributedBy)
	}
	return fmt.Sprintf("pid %d %s, of %s", st.PID, strings.Join(st.Cmdline, " "), who)
}

func orUnknown(s string) string {
	if s == "" {
		return "?"
	}
	return s
}

// cgroupRel is CgroupParent relative to the cgroup2 mount ("" without one):
// a process in a group below it is in a tree's leaf.
func (s *Supervisor) cgroupRel() string {
	if s.opts.CgroupParent == "" {
		return ""
	}
	info := cgroupv2.Detect()
	if info.Mount == "" || !strings.HasPrefix(s.opts.CgroupParent, info.Mount+"/") {
		return ""
	}
	return strings.TrimPrefix(s.opts.CgroupParent, info.Mount)
}

// Strays lists the daemon's strays now (nil for a supervisor that does not
// own its process's children, and where there is no subreaper: there a
// parent pid says nothing about whose a process is).
func (s *Supervisor) Strays() []Stray {
	out := []Stray{}
	for _, st := range s.strays() {
		if !st.Zombie() {
			out = append(out, s.describeStray(st))
		}
	}
	return out
}

type strayStat struct {
	procinfo.Stat
	instance, by string
}

func (s *Supervisor) describeStray(st strayStat) Stray {
	argv, _ := procinfo.Cmdline(st.PID)
	if len(argv) == 0 {
		argv = []string{"[" + st.Comm + "]"}
	}
	s.mu.Lock()
	svc := s.instances[st.instance]
	s.mu.Unlock()
	return Stray{PID: st.PID, PPID: st.PPID, PGID: st.PGID, Start: procinfo.StartTime(st.StartTicks), StartTicks: st.StartTicks,
		Cmdline: argv, Service: svc, Instance: st.instance, AttributedBy: st.by}
}

// strays finds the strays, zombies included (a caller reaps those that are
// its children), each with the tree it is attributed to.
func (s *Supervisor) strays() []strayStat {
	if !s.opts.OwnsChildren || !reaper.IsSubreaper() {
		return nil
	}
	self, err := procinfo.ReadStat(os.Getpid())
	if err != nil {
		return nil
	}
	var roots []procinfo.Stat
	for _, pid := range reaper.Children() {
		st, err := procinfo.ReadStat(pid)
		// A child older than the daemon was inherited across exec: the
		// user's, not a tree's.
		if err != nil || reaper.Protected(pid) || st.StartTicks < self.StartTicks || s.inherited[procKey{pid, st.StartTicks}] {
			continue
		}
		roots = append(roots, st)
	}
	if len(roots) == 0 {
		return nil // the common case costs one read of the children lists
	}
	// An unprotected child may be one being started right now (a shim, a
	// leader, the keeper): once the starts in flight are done, only those
	// still unprotected are orphans.
	began := time.Now()
	settled := reaper.WaitSpawns(2 * time.Second)
	kept := roots[:0]
	for _, r := range roots {
		if reaper.Protected(r.PID) {
			continue
		}
		// Starts overlapping for longer than the wait (a crash loop, a
		// hundred services at once): a child forked during it may be one
		// still being started, so it waits for the next scan. An orphan
		// handed to us was forked before; it is counted now.
		if !settled && !procinfo.StartTime(r.StartTicks).Before(began.Add(-2*time.Second)) {
			continue
		}
		kept = append(kept, r)
	}
	if roots = kept; len(roots) == 0 {
		return nil
	}
	// Members of live trees are theirs, wherever their parent is.
	members := map[int]bool{}
	groups := map[int]string{} // pgid of a process-group tree's leader → instance
	s.mu.Lock()
	svcs := make([]interface{ Tree() *proctree.Tree }, 0, len(s.svcs))
	for _, svc := range s.svcs {
		svcs = append(svcs, svc)
	}
	s.mu.Unlock()
	for _, svc := range svcs {
		tr := svc.Tree()
		if tr == nil {
			continue
		}
		if pids, err := tr.PIDs(); err == nil {
			for _, p := range pids {
				members[p] = true
			}
		}
		if tr.Mechanism() == proctree.ProcessGroup && tr.PID() > 0 {
			groups[tr.PID()] = tr.ID()
		}
	}
	selfCg, _ := cgroupOf(self.PID)
	rel := s.cgroupRel()
	inLeaf := func(pid int) bool {
		cg, err := cgroupOf(pid)
		return err == nil && cg != selfCg && rel != "" && strings.HasPrefix(cg, rel+"/")
	}
	snap, err := procinfo.Snapshot()
	if err != nil {
		snap = nil
	}
	kids := map[int][]procinfo.Stat{}
	now := map[int]uint64{}
	for _, st := range snap {
		kids[st.PPID] = append(kids[st.PPID], st)
		now[st.PID] = st.StartTicks
	}
	var out []strayStat
	var walk func(st procinfo.Stat, instance, by string)
	walk = func(st procinfo.Stat, instance, by string) {
		if members[st.PID] || inLeaf(st.PID) {
			return // a live tree's, with what descends from it
		}
		if m := procinfo.ReadMarkers(st.PID).Instance; m != "" && !st.Zombie() {
			instance, by = m, "marker"
		} else if id, ok := groups[st.PGID]; ok && instance == "" {
			instance, by = id, "process group"
		}
		out = append(out, strayStat{Stat: st, instance: instance, by: by})
		if instance != "" {
			by = "ancestry"
		}
		for _, c := range kids[st.PID] {
			// A child is never older than its parent: an older one is a
			// reused pid's, not a descendant of this stray.
			if c.StartTicks >= st.StartTicks {
				walk(c, instance, by)
			}
		}
	}
	for _, r := range roots {
		// The snapshot came after the roots were read: the same
		// process, or its pid was reused and its children are not ours.
		if t, ok := now[r.PID]; ok && t == r.StartTicks {
			walk(r, "", "")
		}
	}
	return out
}

// killStrays kills the strays keep selects (by identity: each is ours by
// ancestry), reaps those that are the daemon's children, and returns those
// still alive after a bounded wait. It journals what it found (ESCAPED).
func (s *Supervisor) killStrays(ctx context.Context, keep func(strayStat) bool, when string) []Stray {
	deadline := time.Now().Add(5 * time.Second)
	seen := map[int]bool{}
	for {
		// Looked at afresh each round: a stray may fork between a scan and
		// its kill, and its child comes to us too.
		var live, fresh []strayStat
		for _, st := range s.strays() {
			if !keep(st) {
				continue
			}
			if st.Zombie() {
				if st.PPID == os.Getpid() {
					reaper.Collect(st.PID)
				}
				continue // dead; whoever is its parent reaps it
			}
			live = append(live, st)
			if !seen[st.PID] {
				seen[st.PID] = true
				fresh = append(fresh, st)
			}
		}
		if len(fresh) > 0 {
			var desc []string
			for _, st := range fresh {
				desc = append(desc, s.describeStray(st).describe())
			}
			s.bus.Emit(journal.Event{Kind: journal.Leak, Message: fmt.Sprintf("ESCAPED: %d processes re-parented to corral outside every live tree (a daemonizing program that rewrote its environment?): %s; killed %s",
				len(fresh), strings.Join(desc, "; "), when)})
		}
		for _, st := range live {
			proctree.SignalIdentity(st.PID, st.StartTicks, syscall.SIGKILL)
		}
		if len(live) == 0 {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			left := make([]Stray, 0, len(live))
			for _, st := range live {
				left = append(left, s.describeStray(st))
			}
			return left
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// strayProves says whether the stray scan covers what reason (a tree's
// Unprovable) says the tree's own scan cannot see: a descendant re-parented
// to this process is among its strays, which this supervisor sees.
func (s *Supervisor) strayProves(reason string) bool {
	// As PID 1 every orphan of the namespace comes to us (docker exec's
	// too): a stray of unknown tree may be anyone's, so it proves nothing.
	return s.opts.OwnsChildren && reaper.IsSubreaper() && !reaper.InitMode() &&
		(reason == proctree.UnprovableNoShim || reason == proctree.UnprovableShimDied)
}

// verifyStop completes the stop of instance's tree whose report is rep:
// strays attributed to it are killed with it (a survivor fails the stop),
// and an empty tree counts as verified only if no stray of unknown tree is
// left that could be its, and the tier can prove it or the stray scan
// covers what the tier cannot see (no shim, or the shim died). A member can
// leave any tier's container (a cgroup member that moves itself out, as
// root or in a delegated subtree): once the tree is killed it is
// re-parented to us, stopped here if its marker names the tree, else a
// stray of unknown tree that makes the stop unverified.
func (s *Supervisor) verifyStop(ctx context.Context, instance string, rep *proctree.StopReport) error {
	mine := func(st strayStat) bool { return instance != "" && st.instance == instance }
	if left := s.killStrays(ctx, mine, "with their tree"); len(left) > 0 {
		var desc []string
		for _, st := range left {
			desc = append(desc, st.describe())
		}
		return fmt.Errorf("%w: %d strays of %s survive: %s", proctree.ErrNotEmpty, len(left), instance, strings.Join(desc, "; "))
	}
	var unknown []string
	for _, st := range s.Strays() {
		if st.Instance == "" && !reaper.InitMode() {
			unknown = append(unknown, st.describe())
		}
	}
	switch {
	case len(unknown) > 0:
		// Whatever the tier: a member that left its container (a cgroup
		// member that moved itself out as root, a process-group member
		// after its shim died) and rewrote its environment comes to us so.
		if rep.Unverified != "" {
			rep.Unverified += "; and "
		}
		rep.Unverified += fmt.Sprintf("%d processes re-parented to corral belong to no known tree, so may be this one's (corral status lists them, corral shutdown stops them): %s",
			len(unknown), strings.Join(unknown, "; "))
	case s.strayProves(rep.Unverified):
		rep.Unverified = "" // whatever left the tree came to us, and no stray is left
	}
	return nil
}
