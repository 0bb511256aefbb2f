package service

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/corral-sh/corral/internal/config"
	"github.com/corral-sh/corral/internal/probe"
	"github.com/corral-sh/corral/internal/procinfo"
)

// probeOptions are the options of the service's probe of that kind.
func (l *loop) probeOptions(kind string) probe.Options {
	o := probe.Options{Containment: l.s.deps.Containment}
	if obs := l.s.deps.ObserveProbe; obs != nil {
		name := l.s.name
		o.Observe = func(d time.Duration, err error) { obs(name, kind, d, err) }
	}
	return o
}

// watchReady runs the readiness probe outside the loop.
func (l *loop) watchReady(inst *instance) {
	ready, sink, o := inst.cfg.Ready, l.s.deps.Logs, l.probeOptions("ready")
	pidfile := inst.cfg.PIDFile != ""
	ctx, gen := ctxIn(l.probes, inst.id), inst.watchGen
	l.s.goProbe(func() {
		if ready.IsZero() {
			if !pidfile {
				l.s.post(event{kind: EvReady, inst: inst.id, watchGen: gen})
			} // a forking daemon is ready when its main process is known
			return
		}
		err := probe.WaitReady(ctx, ready, sink, inst.logSince, o)
		if ctx.Err() != nil {
			return // its instance went on without it
		}
		k := EvReady
		if err != nil {
			k = EvNotReady
		}
		l.s.post(event{kind: k, inst: inst.id, watchGen: gen, err: err})
	})
}

// watchHealth runs the liveness probe every interval, outside the loop.
func (l *loop) watchHealth(inst *instance) {
	h := inst.cfg.Health
	if h.IsZero() {
		return
	}
	clock, o := l.s.deps.Clock, l.probeOptions("health")
	ctx, gen := ctxIn(l.probes, inst.id), inst.watchGen
	l.s.goProbe(func() {
		for sleep(ctx, clock, h.Interval) {
			err := probe.Check(ctx, h.Probe, h.Timeout, o)
			if ctx.Err() != nil {
				return
			}
			k := EvHealthOK
			if err != nil {
				k = EvHealthBad
			}
			l.s.post(event{kind: k, inst: inst.id, watchGen: gen, err: err})
		}
	})
}

// onLeaderExit turns the exit of an instance's first process into what it
// means under the service's lifetime: the end (leader), the hand-over to
// the pid in the pidfile, or the choice of the process that serves now
// (tree, whose end is the container's emptiness).
func (l *loop) onLeaderExit(inst *instance) {
	cfg, clock := inst.cfg, l.s.deps.Clock
	st, _ := inst.tree.ExitState()
	ei := exitInfo(st, clock.Now(), false)
	if !l.m.state.Running() {
		// A stop is under way: the leader's end is only recorded, and
		// nothing is followed any more.
		l.handle(event{kind: EvExited, inst: inst.id, exit: ei})
		return
	}
	ctx := ctxIn(l.watchers, inst.id)
	clean := ei.Code == 0 && !ei.Signaled
	switch {
	case clean && restartAsked(cfg):
		l.handle(event{kind: EvExited, inst: inst.id, exit: ei, restartFile: true})
	case cfg.Lifetime == config.LifetimeHandover && clean:
		go l.handOver(ctx, inst, inst.tree.PID(), ei)
	case cfg.PIDFile != "" && clean:
		go l.followPIDFile(ctx, inst, cfg.PIDFile, cfg.Ready.Timeout)
	case cfg.PIDFile != "":
		ei.Description = fmt.Sprintf("the launcher (pid %d) failed before writing %s: %s", inst.tree.PID(), cfg.PIDFile, ei.Description)
		l.handle(event{kind: EvExited, inst: inst.id, exit: ei})
	case l.treeDone != nil:
		go func() {
			if pid := oldestMember(inst); pid != 0 && ctx.Err() == nil {
				l.s.post(event{kind: EvMain, inst: inst.id, pid: pid,
					how: fmt.Sprintf("the launcher, pid %d, exited (%s); the oldest process left in the tree", inst.tree.PID(), ei.Description)})
			}
		}()
	case ei.Code == 0 && !ei.Signaled:
		// Count what lives on, to tell a daemonizing program from a clean end.
		go func() {
			n := 0
			if ms, err := inst.tree.Members(); err == nil {
				n = len(ms)
			}
			l.s.post(event{kind: EvExited, inst: inst.id, exit: ei, lingers: n})
		}()
	default:
		l.handle(event{kind: EvExited, inst: inst.id, exit: ei})
	}
}

func oldestMember(inst *instance) int {
	ms, err := inst.tree.Members()
	if err != nil || len(ms) == 0 {
		return 0
	}
	sort.Slice(ms, func(i, j int) bool {
		if ms[i].StartTicks != ms[j].StartTicks {
			return ms[i].StartTicks < ms[j].StartTicks
		}
		return ms[i].PID < ms[j].PID
	})
	return ms[0].PID
}

// followPIDFile reads the pid a forking daemon wrote, checks that it is a
// member of the instance's tree (a stale or foreign pid is never adopted),
// and posts the end of the instance when that process dies.
func (l *loop) followPIDFile(ctx context.Context, inst *instance, path string, within time.Duration) {
	clock := l.s.deps.Clock
	end := func(format string, args ...any) {
		ei := &ExitInfo{At: clock.Now(), Code: -1, Description: fmt.Sprintf(format, args...)}
		l.s.post(event{kind: EvExited, inst: inst.id, exit: ei})
	}
	deadline := clock.Now().Add(within)
	var pid int
	var lastErr error
	for wait := 5 * time.Millisecond; ; wait = min(2*wait, 200*time.Millisecond) {
		pid, lastErr = readPIDFile(path)
		if lastErr == nil {
			if member(inst, pid) {
				break
			}
			lastErr = fmt.Errorf("pid %d in %s is not a process of this service's tree (stale file?)", pid, path)
		}
		if !clock.Now().Before(deadline) {
			end("the main process never showed up: %v (waited %v after the launcher exited)", lastErr, within)
			return
		}
		if !sleep(ctx, clock, wait) {
			return
		}
	}
	if ctx.Err() != nil {
		return
	}
	l.s.post(event{kind: EvMain, inst: inst.id, pid: pid, how: "from " + path})
	st, err := procinfo.ReadStat(pid)
	if err != nil {
		end("main process pid %d (from %s) ended", pid, path)
		return
	}
	if err := waitGone(ctx, clock, pid, st.StartTicks); err != nil {
		return // stopped watching
	}
	end("main process pid %d (from %s) ended", pid, path)
}

func readPIDFile(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return 0, fmt.Errorf("%s does not exist", path)
		}
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("%s holds %q, not a pid", path, strings.TrimSpace(string(b)))
	}
	return pid, nil
}

func member(inst *instance, pid int) bool {
	pids, err := inst.tree.PIDs()
	if err != nil {
		return false
	}
	for _, p := range pids {
		if p == pid {
			return true
		}
	}
	return false
}

// pollGone checks the process's identity every 250 ms, where no exit
// notification for a process that is not our child is at hand.
func pollGone(ctx context.Context, clock Clock, pid int, start uint64) error {
	for {
		if st, err := procinfo.ReadStat(pid); err != nil || st.StartTicks != start || st.Zombie() {
			return nil
		}
		if !sleep(ctx, clock, 250*time.Millisecond) {
			return ctx.Err()
		}
	}
}

// restartAsked reports whether the program left the service's restart file
// (A1111's tmp/restart) on its way out.
func restartAsked(cfg *config.Service) bool {
	if cfg.RestartFile == "" {
		return false
	}
	_, err := os.Stat(cfg.RestartFile)
	return err == nil
}

// handOver looks for the successor of a main process pid that exited 0:
// the youngest root of what is left of the tree (a process whose parent is
// not in the tree: what the dead main started was re-parented away from
// it). Older roots are what it started long ago; the successor's own
// children are not roots. None left: the instance ended with it.
func (l *loop) handOver(ctx context.Context, inst *instance, pid int, ei *ExitInfo) {
	ms, err := inst.tree.Members()
	in := make(map[int]bool, len(ms))
	for _, m := range ms {
		in[m.PID] = true
	}
	var succ int
	var succStart uint64
	if err == nil {
		for _, m := range ms {
			if m.PID == pid || in[m.PPID] {
				continue
			}
			if succ == 0 || m.StartTicks > succStart || (m.StartTicks == succStart && m.PID > succ) {
				succ, succStart = m.PID, m.StartTicks
			}
		}
	}
	if ctx.Err() != nil {
		return
	}
	if succ == 0 {
		ei.Description = fmt.Sprintf("main process pid %d ended (%s) and left no successor", pid, ei.Description)
		l.s.post(event{kind: EvExited, inst: inst.id, exit: ei, lingers: len(ms)})
		return
	}
	l.s.post(event{kind: EvHandover, inst: inst.id, pid: succ, oldPID: pid,
		how: fmt.Sprintf("started by pid %d, which exited: %s", pid, ei.Description)})
}

// followMain watches a main process that is not corral's child (a
// successor): its exit status is not ours to read, so its end is a
// hand-over again when the tree holds a younger process, and the end of
// the instance otherwise. The readiness wait that follows a hand-over tells
// a restart from a crash that left processes behind.
func (l *loop) followMain(inst *instance, pid int) {
	ctx, clock, cfg := ctxIn(l.watchers, inst.id), l.s.deps.Clock, inst.cfg
	go func() {
		if st, err := procinfo.ReadStat(pid); err == nil {
			if waitGone(ctx, clock, pid, st.StartTicks) != nil {
				return
			}
		}
		if ctx.Err() != nil {
			return
		}
		ei := &ExitInfo{At: clock.Now(), Code: -1, Description: fmt.Sprintf("main process pid %d ended", pid)}
		if restartAsked(cfg) {
			l.s.post(event{kind: EvExited, inst: inst.id, exit: ei, restartFile: true})
			return
		}
		l.handOver(ctx, inst, pid, ei)
	}()
}
