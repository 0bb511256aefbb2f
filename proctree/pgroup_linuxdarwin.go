//go:build linux || darwin

package proctree

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/corral-sh/corral/internal/procinfo"
	"github.com/corral-sh/corral/internal/reaper"
)

// procKey identifies a process on this boot.
type procKey struct {
	pid   int
	start uint64
}

func keyOf(s procinfo.Stat) procKey { return procKey{s.PID, s.StartTicks} }

// markers caches which instance marker (and which shim marker) each process
// carries, so that a scan reads the environment only of processes it has
// not seen before. A process's initial environment does not change without
// exec, and an exec'd process that was not a member is never a descendant
// of one.
var markers = struct {
	sync.Mutex // guards m
	m          map[procKey]treeMarks
}{m: map[procKey]treeMarks{}}

type treeMarks struct{ instance, shim string }

func markerOf(s procinfo.Stat) treeMarks {
	k := keyOf(s)
	markers.Lock()
	v, ok := markers.m[k]
	markers.Unlock()
	if ok {
		return v
	}
	m := procinfo.ReadMarkers(s.PID)
	v = treeMarks{instance: m.Instance, shim: m.Shim}
	markers.Lock()
	markers.m[k] = v
	markers.Unlock()
	return v
}

// pruneMarkers drops cache entries of processes absent from snap.
func pruneMarkers(snap []procinfo.Stat) {
	live := make(map[procKey]struct{}, len(snap))
	for _, s := range snap {
		live[keyOf(s)] = struct{}{}
	}
	markers.Lock()
	for k := range markers.m {
		if _, ok := live[k]; !ok {
			delete(markers.m, k)
		}
	}
	markers.Unlock()
}

// pgroupBackend finds members without kernel containment: the leader's
// process group, every descendant of a member, every process carrying the
// tree's marker, and every process once seen as a member (membership is
// sticky, so a member that clears its environment after being seen stays
// one). With corral as child subreaper, a double-forked daemon is
// re-parented to corral and is found by its marker.
//
// On Linux the leader is usually started under a shim (shim_linux.go), a
// per-tree child subreaper: every descendant of the shim is a member, so a
// daemon that setsids and overwrites its environment stays one. The shim is
// no member itself; it leaves last, when its subtree is empty.
type pgroupBackend struct {
	id   string
	self int

	shim      int    // the shim's pid, 0 without one; set before started
	shimStart uint64 // the shim's start time
	shimGone  bool   // guarded by mu: the shim's end was handled (orphans adopted)
	orphaned  bool   // guarded by mu: the shim died before its subtree was empty

	// adopted: the tree came from an earlier process (Adopt); adoptedShim:
	// its shim was alive then, so every descendant of it is still found.
	adopted, adoptedShim bool

	leader      int    // set once by started
	leaderStart uint64 // the leader's start time, for the group check
	unclaim     func()

	mu        sync.Mutex // guards seen and groupGone
	seen      map[procKey]struct{}
	groupGone bool // the leader's group was seen empty: its id may be reused
	relOnce   sync.Once
}

func newPgroupBackend(id string) *pgroupBackend {
	return &pgroupBackend{id: id, self: os.Getpid(), seen: map[procKey]struct{}{}}
}

func (b *pgroupBackend) mechanism() Mechanism { return ProcessGroup }

func (b *pgroupBackend) prepare(cmd *exec.Cmd) error {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	if !cmd.SysProcAttr.Setsid {
		cmd.SysProcAttr.Setpgid = true
	}
	return nil
}

func (b *pgroupBackend) started(pid int) {
	b.leader = pid
	if st, err := procinfo.ReadStat(pid); err == nil {
		b.leaderStart = st.StartTicks
		b.mu.Lock()
		b.seen[keyOf(st)] = struct{}{}
		b.mu.Unlock()
	}
	b.unclaim = reaper.Register(func(st procinfo.Stat) bool {
		if st.PID == b.leader || st.PID == b.shim {
			return false // exec.Cmd.Wait (or the tree) owns their statuses
		}
		b.mu.Lock()
		defer b.mu.Unlock()
		_, ok := b.seen[keyOf(st)]
		return ok || (!b.groupGone && st.PGID == b.leader)
	})
}

func (b *pgroupBackend) abort() {}

// admit: prepare made the leader a group of its own.
func (b *pgroupBackend) admit(int) error { return nil }

// container: a process group has no name beyond the leader's pid.
func (b *pgroupBackend) container() string { return "" }

// delivered: a signal is delivered as asked.
func (b *pgroupBackend) delivered() string { return "" }

// pids has no cheaper source than the scan members makes.
func (b *pgroupBackend) pids() ([]int, error) { return pidsOf(b.members()) }

// scanResult is one pass over the process table.
type scanResult struct {
	live []member
	// groups maps each process group whose live processes are all members
	// to one of those members, which vouches for the group when it is
	// signalled as a whole.
	groups map[int]procinfo.Stat
	// shim is the tree's live shim, if any.
	shim *procinfo.Stat
}

// isShim reports whether s is this tree's shim: the one we started, or
// (for an adopted tree) a process carrying the shim marker.
func (b *pgroupBackend) isShim(s procinfo.Stat) bool {
	if b.shim > 0 {
		return s.PID == b.shim && s.StartTicks == b.shimStart
	}
	return !s.Zombie() && markerOf(s).shim == b.id
}

func (b *pgroupBackend) scan() (scanResult, error) {
	snap, err := procinfo.Snapshot()
	if err != nil {
		return scanResult{}, fmt.Errorf("proctree: scan processes: %w", err)
	}
	pruneMarkers(snap)
	b.mu.Lock()
	defer b.mu.Unlock()

	groupAlive := false
	isMember := make([]bool, len(snap))
	isShim := make([]bool, len(snap))
	byPPID := make(map[int][]int, len(snap))
	var queue []int
	for i, s := range snap {
		byPPID[s.PPID] = append(byPPID[s.PPID], i)
		if s.PID == b.self || s.PID <= 1 {
			continue
		}
		if b.leader > 0 && s.PGID == b.leader && !s.Zombie() {
			groupAlive = true
		}
		_, seen := b.seen[keyOf(s)]
		inGroup := b.leader > 0 && !b.groupGone && s.PGID == b.leader && s.StartTicks >= b.leaderStart
		kernelThread := s.PID == 2 || s.PPID == 2
		if !kernelThread && b.isShim(s) {
			// Not a member, but everything below it is.
			isShim[i] = true
			queue = append(queue, i)
			continue
		}
		if seen || inGroup || (!s.Zombie() && !kernelThread && markerOf(s).instance == b.id) {
			isMember[i] = true
			queue = append(queue, i)
		}
	}
	for len(queue) > 0 {
		i := queue[0]
		queue = queue[1:]
		for _, c := range byPPID[snap[i].PID] {
			if !isMember[c] && !isShim[c] && snap[c].PID != b.self {
				isMember[c] = true
				queue = append(queue, c)
			}
		}
	}
	if b.leader > 0 && !groupAlive {
		b.groupGone = true
	}
	res := scanResult{groups: map[int]procinfo.Stat{}}
	foreignGroup := map[int]bool{}
	for i, s := range snap {
		if isShim[i] {
			if !s.Zombie() || !b.shimGone {
				res.shim = &snap[i]
			}
			continue
		}
		if s.Zombie() {
			if isMember[i] {
				b.seen[keyOf(s)] = struct{}{} // keeps the zombie claimable
			}
			continue
		}
		if !isMember[i] {
			foreignGroup[s.PGID] = true
			continue
		}
		b.seen[keyOf(s)] = struct{}{}
		res.live = append(res.live, member{stat: s})
		res.groups[s.PGID] = s
	}
	for g := range foreignGroup {
		delete(res.groups, g)
	}
	if b.shim > 0 && !b.shimGone && res.shim == nil {
		// Dead and collected, but its orphans are not adopted yet: the tree
		// is not known empty until they are.
		res.shim = &procinfo.Stat{PID: b.shim, StartTicks: b.shimStart, State: 'Z'}
	}
	// Forget identities that no longer exist, zombies included.
	present := make(map[procKey]struct{}, len(snap))
	for _, s := range snap {
		present[keyOf(s)] = struct{}{}
	}
	for k := range b.seen {
		if _, ok := present[k]; !ok && k.pid != b.leader {
			delete(b.seen, k)
		}
	}
	return res, nil
}

func (b *pgroupBackend) members() ([]member, error) {
	r, err := b.scan()
	return r.live, err
}

func stillSame(want procinfo.Stat) func() bool {
	return func() bool {
		st, err := procinfo.ReadStat(want.PID)
		return err == nil && st.StartTicks == want.StartTicks && !st.Zombie()
	}
}

func (b *pgroupBackend) signal(sig syscall.Signal) ([]member, error) {
	r, err := b.scan()
	if err != nil {
		return nil, err
	}
	reached := r.live[:0]
	for _, m := range r.live {
		if sendVerified(m.stat.PID, sig, stillSame(m.stat)) {
			reached = append(reached, m)
		}
	}
	return reached, nil
}

// signalGroups signals each process group made only of members as a whole,
// which catches processes forked after the scan. A group id cannot be reused
// while any process is in the group, so a member verified alive in the group
// right before the kill vouches that the id still names our group.
func signalGroups(groups map[int]procinfo.Stat, sig syscall.Signal) {
	for pgid, m := range groups {
		st, err := procinfo.ReadStat(m.PID)
		if err != nil || st.StartTicks != m.StartTicks || st.PGID != pgid || st.Zombie() {
			continue
		}
		unix.Kill(-pgid, sig)
	}
}

func stopped(s procinfo.Stat) bool { return s.State == 'T' || s.State == 't' }

// backoff yields growing pauses for polling process state that the kernel
// offers no notification for.
type backoff struct{ d, max time.Duration }

func (bo *backoff) wait(ctx context.Context) error {
	if bo.d == 0 {
		bo.d = 500 * time.Microsecond
	}
	t := time.NewTimer(bo.d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		return ctx.Err()
	}
	if bo.d *= 2; bo.d > bo.max {
		bo.d = bo.max
	}
	return nil
}

// freeze SIGSTOPs members until a scan finds every live member stopped: a
// stopped process cannot fork, so the tree can no longer grow or respawn.
func (b *pgroupBackend) freeze(ctx context.Context) error {
	sent := map[procKey]bool{}
	bo := backoff{max: 20 * time.Millisecond}
	for {
		r, err := b.scan()
		if err != nil {
			return err
		}
		all := true
		for _, m := range r.live {
			if stopped(m.stat) {
				continue
			}
			all = false
			if !sent[keyOf(m.stat)] {
				sendVerified(m.stat.PID, unix.SIGSTOP, stillSame(m.stat))
				sent[keyOf(m.stat)] = true
			}
		}
		if all {
			return nil
		}
		signalGroups(r.groups, unix.SIGSTOP)
		if err := bo.wait(ctx); err != nil {
			return fmt.Errorf("proctree: freezing tree %s: %w", b.id, err)
		}
	}
}

func (b *pgroupBackend) thaw() error {
	_, err := b.signal(unix.SIGCONT)
	return err
}

// kill freezes the tree, then SIGKILLs every member, rescanning until none
// is alive. Freezing first is what beats respawners and fork storms: once
// every member is stopped, nothing can replace a process as it dies.
func (b *pgroupBackend) kill(ctx context.Context) ([]member, error) {
	if err := b.freeze(ctx); err != nil {
		return nil, err
	}
	var killed []member
	counted := map[procKey]bool{}
	bo := backoff{max: 20 * time.Millisecond}
	var emptyAt time.Time
	for {
		r, err := b.scan()
		if err != nil {
			return killed, err
		}
		if len(r.live) == 0 {
			if r.shim == nil {
				return killed, nil
			}
			// The shim leaves by itself once it has reaped its subtree
			// (and relayed the leader's status); one that does not is
			// killed, last.
			if emptyAt.IsZero() {
				emptyAt = time.Now()
			} else if time.Since(emptyAt) > shimLinger {
				sendVerified(r.shim.PID, unix.SIGKILL, stillSame(*r.shim))
			}
			if err := bo.wait(ctx); err != nil {
				return killed, fmt.Errorf("proctree: killing tree %s: its shim %d: %w", b.id, r.shim.PID, err)
			}
			continue
		}
		for _, m := range r.live {
			k := keyOf(m.stat)
			if !counted[k] {
				counted[k] = true
				killed = append(killed, m)
			}
			sendVerified(m.stat.PID, unix.SIGKILL, stillSame(m.stat))
		}
		signalGroups(r.groups, unix.SIGKILL)
		if err := bo.wait(ctx); err != nil {
			return killed, fmt.Errorf("proctree: killing tree %s: %w", b.id, err)
		}
	}
}

// exitWatcher wakes waitEmpty when a member exits (pidfds on Linux,
// kqueue NOTE_EXIT on macOS), so that emptiness costs a scan per exit
// instead of a scan per poll.
type exitWatcher interface {
	// watch arranges a wake-up when any of pids exits; a pid already
	// gone wakes the next wait at once.
	watch(pids []int)
	// wait blocks until a watched process exits, d passes or ctx ends.
	wait(ctx context.Context, d time.Duration) error
	close()
}

func (b *pgroupBackend) waitEmpty(ctx context.Context) error {
	bo := backoff{max: 50 * time.Millisecond}
	w := newExitWatcher()
	if w != nil {
		defer w.close()
	}
	began := time.Now()
	for {
		r, err := b.scan()
		if err != nil {
			return err
		}
		if len(r.live) == 0 && r.shim == nil {
			return nil
		}
		if w != nil {
			pids := make([]int, 0, len(r.live)+1)
			for _, m := range r.live {
				pids = append(pids, m.stat.PID)
			}
			if r.shim != nil {
				pids = append(pids, r.shim.PID)
			}
			w.watch(pids)
			// Exits wake it; the timeout covers only a member this scan
			// missed (one forked after it by a member that never exits
			// would keep the tree non-empty anyway).
			if err := w.wait(ctx, time.Second); err != nil {
				return fmt.Errorf("proctree: waiting for tree %s to empty: %w", b.id, err)
			}
			continue
		}
		if time.Since(began) > 2*time.Second {
			// A tree that outlives its leader for long (lifetime "tree")
			// is polled slowly: each poll reads the whole process table.
			bo.max = time.Second
		}
		if err := bo.wait(ctx); err != nil {
			return fmt.Errorf("proctree: waiting for tree %s to empty: %w", b.id, err)
		}
	}
}

func (b *pgroupBackend) release() error {
	b.relOnce.Do(func() {
		if b.unclaim != nil {
			time.AfterFunc(10*time.Second, b.unclaim)
			reaper.Reap()
		}
	})
	return nil
}

// shimLinger bounds how long a kill waits for an emptied tree's shim to
// leave by itself before it is killed too.
const shimLinger = 2 * time.Second

// setShim records the tree's shim; call it before started.
func (b *pgroupBackend) setShim(pid int, start uint64) {
	b.shim, b.shimStart = pid, start
}

// shimEnded records that the shim left by itself, its subtree empty.
func (b *pgroupBackend) shimEnded() {
	b.mu.Lock()
	b.shimGone = true
	b.mu.Unlock()
}

// adoptOrphans makes members of this process's children that the tree's
// dead shim left to it: after the shim was killed, its orphans (a daemon
// that setsid'd and rewrote its environment among them) are re-parented to
// us, the nearest subreaper, and nothing else says whose they are. A child
// is taken when it started after the shim, is no child some Wait owns (a
// leader, a shim, the keeper), and carries no other tree's marker. Call it
// after the shim was waited for: by then the kernel has re-parented them.
// It returns how many it took.
func (b *pgroupBackend) adoptOrphans() int {
	snap, err := procinfo.Snapshot()
	b.mu.Lock()
	defer b.mu.Unlock()
	b.shimGone = true
	b.orphaned = true
	if err != nil {
		return 0
	}
	n := 0
	for _, s := range snap {
		if s.PPID != b.self || s.Zombie() || s.StartTicks < b.shimStart || reaper.Protected(s.PID) {
			continue
		}
		if m := markerOf(s); (m.instance != "" && m.instance != b.id) || m.shim != "" {
			continue
		}
		if _, ok := b.seen[keyOf(s)]; !ok {
			b.seen[keyOf(s)] = struct{}{}
			n++
		}
	}
	return n
}

// unprovable says why an empty scan does not prove this tree empty, or "".
// The scan sees the leader's group, descendants of members and marker
// carriers; a descendant that setsids and rewrites its environment
// (setproctitle: nginx, redis) is none of these once its parent is gone,
// and only a subreaper keeps it within reach:
//   - without any subreaper (macOS; Linux where the prctl failed) it goes
//     to init;
//   - without the tree's shim (NoShim, or the shim died before the tree
//     was empty) it goes to this process, among its children as a stray
//     that says nothing of its tree: only a scan of this process's own
//     children, which proctree cannot interpret, finds it;
//   - adopted from an earlier process without a live shim, it went to
//     init when that process died.
func (b *pgroupBackend) unprovable() string {
	if !reaper.IsSubreaper() {
		return UnprovableNoSubreaper
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.adopted && !b.adoptedShim:
		return UnprovableAdopted
	case b.orphaned:
		return UnprovableShimDied
	case !b.adopted && b.shim == 0 && runtime.GOOS == "linux":
		return UnprovableNoShim
	}
	return ""
}

// adoptedPgroup is the backend of an earlier process's process-group tree;
// it records whether that tree's shim is still alive (see unprovable).
func adoptedPgroup(instance string) *pgroupBackend {
	b := newPgroupBackend(instance)
	b.adopted = true
	if r, err := b.scan(); err == nil && r.shim != nil {
		b.adoptedShim = true
	}
	return b
}
