// Package reclaim owns finding and stopping what an earlier corral run left
// behind: instances its journal says may still be alive, and those that
// survive with no journal at all (Discover). Their processes are found by
// what survives a crash of corral and PID reuse — the cgroup directory and
// the instance marker in every member's environment — and a journaled
// leader PID is used only when its start time still matches. Nothing is
// ever signalled by PID alone, and nothing by name.
package reclaim

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/corral-sh/corral/internal/journal"
	"github.com/corral-sh/corral/internal/procinfo"
	"github.com/corral-sh/corral/proctree"
)

// Report is what reclaiming one instance found and did.
type Report struct {
	Instance string             `json:"instance"`
	Service  string             `json:"service"`
	Cgroup   string             `json:"cgroup,omitempty"`
	Found    []proctree.Process `json:"found"`
	Killed   int                `json:"killed"`
	// Reused names a journaled leader PID that now belongs to an unrelated
	// process (another start time); it was left alone.
	Reused int `json:"reused,omitempty"`
	// Gone: nothing of it was left (no group, no marked process, the
	// leader gone or reused); nothing was done.
	Gone bool `json:"gone,omitempty"`
	// Unjournaled: found by its group or markers, not by the journal.
	Unjournaled bool `json:"unjournaled,omitempty"`
	// Unverified, when not empty, says why the tree's tier could not
	// prove it empty after the kill (proctree.Tree.Unprovable: a
	// process-group tree whose shim was gone with the daemon that ran it).
	Unverified string `json:"unverified,omitempty"`
	// Zombies lists members that were killed but that a parent other than
	// corral had not reaped when the wait for them ended.
	Zombies []int  `json:"zombies,omitempty"`
	Error   string `json:"error,omitempty"`
	// Pending (with Options.DeferZombies) are the killed processes still
	// in the process table: the caller waits for them (WaitGone) before
	// the service starts again.
	Pending []proctree.Process `json:"-"`
}

// Options tune Reap.
type Options struct {
	DryRun bool
	Bus    *journal.Bus
	// ZombieWait bounds the wait for killed members that another parent
	// (an init that reaps slowly) has not reaped yet. 0: 10 s.
	ZombieWait time.Duration
	// DeferZombies: do not wait for killed processes that are not reaped
	// yet; report them in Report.Pending. A daemon's start uses it, so that
	// it answers at once while those services wait.
	DeferZombies bool
}

// Reap stops the processes of every instance in live (DryRun: only finds
// them) and journals each reap on o.Bus. It returns one report per
// instance. Its cost follows what is alive, not the journal's length: one
// scan of the process table tells which instances have anything left, and
// those with nothing are summed up in one event. When ctx ends first, the
// instances not yet reaped are reported with an error, never skipped
// silently.
func Reap(ctx context.Context, live []*journal.Instance, o Options) []Report {
	if o.ZombieWait <= 0 {
		o.ZombieWait = 10 * time.Second
	}
	emit := func(e journal.Event) {
		if !o.DryRun && o.Bus != nil {
			o.Bus.Emit(e)
		}
	}
	w := look(live)
	var out []Report
	gone, earlierBoot := 0, 0
	for i, in := range live {
		r := Report{Instance: in.ID, Service: in.Service, Cgroup: in.Cgroup, Unjournaled: in.Unjournaled}
		if ctx.Err() != nil {
			for _, rest := range live[i:] {
				out = append(out, Report{Instance: rest.ID, Service: rest.Service, Cgroup: rest.Cgroup, Unjournaled: rest.Unjournaled,
					Error: "not reaped: the reap ran out of time; nothing of this service starts until a reap finds it empty"})
			}
			emit(journal.Event{Kind: journal.Reaped, Message: fmt.Sprintf("reap incomplete: out of time with %d instances left to look at", len(live)-i)})
			break
		}
		tg := w.triage(in)
		r.Reused = tg.reused
		if tg.earlierBoot {
			r.Gone = true
			earlierBoot++
			out = append(out, r)
			continue
		}
		leaderOurs, leaderZombie := tg.leaderOurs, tg.leaderZombie
		if tg.gone {
			r.Gone = true
			gone++
			if r.Reused != 0 {
				emit(journal.Event{Kind: journal.Reused, Service: in.Service, Instance: in.ID, PID: r.Reused,
					Message: fmt.Sprintf("pid %d now belongs to an unrelated process (other start time); left alone", r.Reused)})
			}
			out = append(out, r)
			continue
		}
		out = append(out, reapOne(ctx, in, r, leaderOurs, leaderZombie, o, emit))
	}
	if gone+earlierBoot > 0 {
		msg := fmt.Sprintf("%d journal records of earlier runs had nothing left (no group, no marked process, leader gone)", gone)
		if earlierBoot > 0 {
			msg += fmt.Sprintf("; %d were from an earlier boot", earlierBoot)
		}
		emit(journal.Event{Kind: journal.Reaped, Message: msg, Fields: map[string]string{"gone": fmt.Sprint(gone + earlierBoot)}})
	}
	return out
}

// Gone returns the ids of the instances in live that have nothing left:
// no group, no marked process, the leader gone or reused, or an earlier
// boot. One scan of the process table serves them all, so a journal's
// length costs file reads, not scans.
func Gone(live []*journal.Instance) map[string]bool {
	w := look(live)
	out := map[string]bool{}
	for _, in := range live {
		if tg := w.triage(in); tg.gone || tg.earlierBoot {
			out[in.ID] = true
		}
	}
	return out
}

// world is one look at the process table and the cgroup directories, taken
// once for every instance triaged: a journal of 60,000 records must not
// cost 60,000 scans (or stats).
type world struct {
	boot     string
	procs    map[int]procinfo.Stat
	carriers map[string][]procinfo.Stat
	err      error                      // the process table could not be read: nothing counts as gone
	dirs     map[string]map[string]bool // parent → names of the groups in it (nil: no such parent)
}

func look(live []*journal.Instance) *world {
	want := make(map[string]bool, len(live))
	for _, in := range live {
		want[in.ID] = true
	}
	w := &world{boot: procinfo.BootID(), procs: map[int]procinfo.Stat{}, dirs: map[string]map[string]bool{}}
	snap, err := procinfo.Snapshot()
	if err != nil && !errors.Is(err, errors.ErrUnsupported) {
		w.err = err
	}
	for _, st := range snap {
		w.procs[st.PID] = st
	}
	w.carriers = carriersIn(snap, want)
	return w
}

// carriersIn maps each wanted instance to its live processes that say they
// are its own: the members carrying its marker, and its shim, which names
// the instance while what it holds may carry no readable marker at all (a
// setsid'd daemon that overwrote its environment: nginx, redis). Counting
// only the marker, an instance whose every member had rewritten its
// environment looked gone, and a keeper reaping after the daemon's SIGKILL
// left the whole tree running under its shim.
func carriersIn(snap []procinfo.Stat, want map[string]bool) map[string][]procinfo.Stat {
	self := os.Getpid()
	out := map[string][]procinfo.Stat{}
	for _, st := range snap {
		if st.Zombie() || st.PID == self || st.PID <= 2 || st.PPID == 2 {
			continue
		}
		m := procinfo.ReadMarkers(st.PID)
		id := m.Instance
		if id == "" {
			id = m.Shim
		}
		if id != "" && want[id] {
			out[id] = append(out[id], st)
		}
	}
	return out
}

func (w *world) groupExists(dir string) bool {
	if dir == "" {
		return false
	}
	parent, name := filepath.Split(filepath.Clean(dir))
	names, ok := w.dirs[parent]
	if !ok {
		if ents, err := os.ReadDir(parent); err == nil {
			names = make(map[string]bool, len(ents))
			for _, e := range ents {
				names[e.Name()] = true
			}
		} else if !errors.Is(err, fs.ErrNotExist) {
			// Unreadable: say it exists, so it is looked at closely.
			names = map[string]bool{name: true}
			defer delete(w.dirs, parent)
		}
		w.dirs[parent] = names
	}
	return names[name]
}

type triaged struct {
	earlierBoot  bool
	gone         bool // nothing left
	leaderOurs   bool // the journaled leader runs, with its start time
	leaderZombie bool // dead, not yet reaped by the parent it was handed to
	reused       int  // the journaled leader pid belongs to another process
}

func (w *world) triage(in *journal.Instance) triaged {
	var t triaged
	if in.Boot != "" && in.Boot != w.boot {
		// Processes do not survive a reboot; neither do cgroups.
		t.earlierBoot = true
		return t
	}
	if in.PID > 0 {
		if st, ok := w.procs[in.PID]; ok {
			switch {
			case st.StartTicks != in.Start:
				t.reused = in.PID
			case st.Zombie():
				// Its pid still counts as taken until it is reaped.
				t.leaderZombie = true
			default:
				t.leaderOurs = true
			}
		}
	}
	t.gone = !t.leaderOurs && !t.leaderZombie && len(w.carriers[in.ID]) == 0 && w.err == nil && !w.groupExists(in.Cgroup)
	return t
}

func reapOne(ctx context.Context, in *journal.Instance, r Report, leaderOurs, leaderZombie bool, o Options, emit func(journal.Event)) Report {
	tr, err := proctree.Adopt(in.ID, proctree.AdoptOptions{CgroupDir: in.Cgroup})
	if errors.Is(err, errors.ErrUnsupported) {
		// Windows: a job dies with the last handle to it, which the
		// earlier corral held; there is nothing left to reap.
		r.Gone = true
		return r
	}
	if err != nil {
		r.Error = err.Error()
		emit(journal.Event{Kind: journal.Reaped, Service: in.Service, Instance: in.ID, Cgroup: in.Cgroup, Message: "reap failed: " + r.Error})
		return r
	}
	defer tr.Release()
	r.Found, _ = tr.Members()
	if leaderOurs && !contains(r.Found, in.PID) {
		// The leader dropped its marker and left the cgroup, yet its
		// identity is ours: list it too.
		if st, err := procinfo.ReadStat(in.PID); err == nil {
			argv, _ := procinfo.Cmdline(in.PID)
			r.Found = append(r.Found, proctree.Process{PID: in.PID, PPID: st.PPID, PGID: st.PGID, Cmdline: argv, StartTicks: st.StartTicks, RSS: st.RSS})
		}
	}
	if o.DryRun {
		return r
	}
	if err := tr.Kill(ctx); err != nil {
		r.Error = err.Error()
	}
	if leaderOurs {
		proctree.SignalIdentity(in.PID, in.Start, syscall.SIGKILL)
	}
	r.Killed = len(r.Found)
	if len(r.Found) > 0 {
		r.Unverified = tr.Unprovable()
	}
	if left, _ := tr.Members(); len(left) > 0 && r.Error == "" {
		var desc []string
		for _, p := range left {
			desc = append(desc, fmt.Sprintf("pid %d %s", p.PID, strings.Join(p.Cmdline, " ")))
		}
		r.Error = fmt.Sprintf("%d processes survive: %s", len(left), strings.Join(desc, "; "))
	}
	wait := r.Found
	if leaderZombie {
		wait = append(wait[:len(wait):len(wait)], proctree.Process{PID: in.PID, StartTicks: in.Start})
	}
	if o.DeferZombies {
		for _, p := range wait {
			if st, err := procinfo.ReadStat(p.PID); err == nil && (p.StartTicks == 0 || st.StartTicks == p.StartTicks) {
				r.Pending = append(r.Pending, p)
				r.Zombies = append(r.Zombies, p.PID)
			}
		}
	} else {
		r.Zombies = WaitGone(ctx, wait, o.ZombieWait, func(z []int) {
			emit(journal.Event{Kind: journal.Reaped, Service: in.Service, Instance: in.ID,
				Message: fmt.Sprintf("waiting (at most %v) for %s, killed, to be reaped by %s: the service starts only once they are gone", o.ZombieWait, pidList(z), parents(z))})
		})
	}
	if r.Reused != 0 {
		emit(journal.Event{Kind: journal.Reused, Service: in.Service, Instance: in.ID, PID: r.Reused,
			Message: fmt.Sprintf("pid %d now belongs to an unrelated process (other start time); left alone", r.Reused)})
	}
	msg := fmt.Sprintf("reaped leftovers of an earlier run: %d processes stopped", r.Killed)
	if r.Unjournaled {
		msg += " (found by its cgroup or markers: the journal had no live record of it)"
	}
	switch {
	case len(r.Pending) > 0:
		msg += fmt.Sprintf("; %s killed but not yet reaped by %s: the service waits for them before it starts", pidList(r.Zombies), parents(r.Zombies))
	case len(r.Zombies) > 0:
		msg += fmt.Sprintf("; %s still unreaped by %s after %v (dead, holding only their pid)", pidList(r.Zombies), parents(r.Zombies), o.ZombieWait)
	}
	if r.Error != "" {
		msg = "reap incomplete: " + r.Error
	}
	emit(journal.Event{Kind: journal.Reaped, Service: in.Service, Instance: in.ID, Cgroup: in.Cgroup, Message: msg,
		Fields: map[string]string{"found": fmt.Sprint(len(r.Found)), "killed": fmt.Sprint(r.Killed), "reused": fmt.Sprint(r.Reused),
			"unjournaled": fmt.Sprint(r.Unjournaled)}})
	// Let the adopted tree finish: its container (the cgroup) is removed
	// once it is seen empty. Releasing first would leave the empty group
	// behind.
	select {
	case <-tr.Done():
	case <-time.After(5 * time.Second):
	case <-ctx.Done():
	}
	return r
}

// WaitGone waits until every process in found is gone from the process
// table, not only dead: a killed leader whose parent is an init that reaps
// slowly stays a zombie, and a program that checks its old pid ("Already
// running on PID ...", postmaster.pid) refuses to start while it exists.
// No event tells a non-parent that a zombie was reaped, so it polls, with a
// backoff, up to limit. It returns the pids still there; waiting is said
// once, through waiting, when it lasts.
func WaitGone(ctx context.Context, found []proctree.Process, limit time.Duration, waiting func([]int)) []int {
	left := func() []int {
		var pids []int
		for _, p := range found {
			st, err := procinfo.ReadStat(p.PID)
			if err == nil && (p.StartTicks == 0 || st.StartTicks == p.StartTicks) {
				pids = append(pids, p.PID)
			}
		}
		return pids
	}
	deadline := time.Now().Add(limit)
	told := false
	for d := time.Millisecond; ; d = min(2*d, 100*time.Millisecond) {
		pids := left()
		if len(pids) == 0 {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return pids
		}
		if !told && d >= 64*time.Millisecond {
			told = true
			waiting(pids)
		}
		select {
		case <-time.After(d):
		case <-ctx.Done():
		}
	}
}

func pidList(pids []int) string {
	s := make([]string, len(pids))
	for i, p := range pids {
		s[i] = fmt.Sprint(p)
	}
	if len(pids) == 1 {
		return "pid " + s[0]
	}
	return "pids " + strings.Join(s, ", ")
}

// parents names who must reap the zombies.
func parents(pids []int) string {
	seen := map[int]bool{}
	var out []int
	for _, p := range pids {
		if st, err := procinfo.ReadStat(p); err == nil && !seen[st.PPID] {
			seen[st.PPID] = true
			out = append(out, st.PPID)
		}
	}
	sort.Ints(out)
	if len(out) == 0 {
		return "their parent"
	}
	s := make([]string, len(out))
	for i, p := range out {
		s[i] = fmt.Sprint(p)
	}
	return "their parent (pid " + strings.Join(s, ", ") + ")"
}

func contains(ms []proctree.Process, pid int) bool {
	for _, m := range ms {
		if m.PID == pid {
			return true
		}
	}
	return false
}
