package supervisor

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/corral-sh/corral/internal/config"
	"github.com/corral-sh/corral/internal/diag"
	"github.com/corral-sh/corral/internal/journal"
	"github.com/corral-sh/corral/internal/pidslimit"
	"github.com/corral-sh/corral/internal/procinfo"
	"github.com/corral-sh/corral/internal/reclaim"
	"github.com/corral-sh/corral/internal/render"
	"github.com/corral-sh/corral/internal/service"
	"github.com/corral-sh/corral/internal/statedir"
	"github.com/corral-sh/corral/internal/watchdog"
	"github.com/corral-sh/corral/proctree"
)

// Watch runs the watchdog until ctx ends: every interval it samples each
// running tree's members (only the members: cgroup.procs in the cgroup
// tier), checks the limits, and acts; every leak-sweep period it looks for
// processes of ours outside any live container.
func (s *Supervisor) Watch(ctx context.Context) {
	cfg := s.Config()
	tick := time.NewTicker(cfg.Watch.Interval)
	defer tick.Stop()
	sweep := time.NewTicker(cfg.Watch.LeakSweep)
	defer sweep.Stop()
	w := newWatcher(s)
	defer w.close()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			w.pass(ctx)
		case <-sweep.C:
			s.SweepLeaks(ctx)
		}
	}
}

// watcher is the state of the Watch goroutine; nothing else touches it.
type watcher struct {
	s     *Supervisor
	prev  map[string]watchdog.Sample    // by instance
	acted map[string]time.Time          // instance (or "global") → last breach handled
	rss   map[string]*watchdog.RSSCache // by instance (cgroup tier)
	// refused is the kernel's count of refused forks per instance, as last seen.
	refused map[string]int
}

func newWatcher(s *Supervisor) *watcher {
	return &watcher{s: s, prev: map[string]watchdog.Sample{}, acted: map[string]time.Time{},
		rss: map[string]*watchdog.RSSCache{}, refused: map[string]int{}}
}

func (w *watcher) close() {
	for _, c := range w.rss {
		c.Close()
	}
}

// sample looks at a tree's members: in the cgroup tier from cgroup.procs
// and kept-open statm files, elsewhere from a member snapshot.
func (w *watcher) sample(tr *proctree.Tree, now time.Time) (watchdog.Sample, error) {
	if tr.Mechanism() == proctree.Cgroup {
		c := w.rss[tr.ID()]
		if c == nil {
			c = watchdog.NewRSSCache() // nil where the platform has none
		}
		if c != nil {
			w.rss[tr.ID()] = c
			pids, err := tr.PIDs()
			if err != nil {
				return watchdog.Sample{}, err
			}
			rss, alive := c.Sum(pids)
			return watchdog.SampleOf(now, alive, rss), nil
		}
	}
	ms, err := tr.Stats()
	if err != nil {
		return watchdog.Sample{}, err
	}
	return watchdog.NewSample(now, ms), nil
}

type sampled struct {
	svc  *service.Service
	cfg  *config.Service
	inst string
	u    watchdog.Usage
}

func (w *watcher) pass(ctx context.Context) {
	s := w.s
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	cfg := s.cfg
	svcs := make([]*service.Service, 0, len(s.svcs))
	for _, n := range cfg.Names() {
		svcs = append(svcs, s.svcs[n])
	}
	s.mu.Unlock()
	now := time.Now()
	seen := map[string]bool{}
	var all []sampled
	for _, svc := range svcs {
		tr := svc.Tree()
		if tr == nil || !svc.Status().State.Running() {
			continue // nothing, or a tree already being stopped: not frozen under its stop
		}
		cur, err := w.sample(tr, now)
		if err != nil {
			continue
		}
		u := watchdog.Measure(w.prev[tr.ID()], cur)
		w.prev[tr.ID()] = cur
		seen[tr.ID()] = true
		sc := cfg.Services[svc.Name()]
		if sc == nil {
			continue
		}
		if (sc.Limits.GPUMemory > 0 || cfg.Watch.Limits.GPUMemory > 0) && s.opts.GPU != nil {
			// Only trees with a GPU limit pay for nvidia-smi here (its
			// answer is shared for 2 s with status and scrapes).
			if usage, err := s.opts.GPU.Usage(ctx); err == nil {
				u.GPUMemory, _ = usage.Sum(cur.PIDs())
			}
		}
		all = append(all, sampled{svc, sc, tr.ID(), u})
		breaches := watchdog.Check(sc.Limits, u)
		if sc.Limits.Processes > 0 && (len(breaches) == 0 || breaches[0].Kind != "processes") {
			// At a kernel limit the tree may sit just below it while the
			// kernel refuses its forks: that is the breach.
			if n, ok := pidslimit.Refused(tr.ID()); ok && n > w.refused[tr.ID()] {
				w.refused[tr.ID()] = n
				breaches = append([]watchdog.Breach{{Kind: "processes", Value: float64(u.Members), Limit: float64(sc.Limits.Processes), Refused: n}}, breaches...)
			}
		}
		if len(breaches) > 0 && w.due(tr.ID(), cfg.Watch.BundleCooldown, now) {
			if breaches[0].Grows() || anyGrows(breaches) {
				fctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				tr.Freeze(fctx) // it cannot grow while we act
				cancel()
			}
			w.act(ctx, svc, sc.Name, tr.ID(), sc.OnLimit, u, sc.Limits, breaches)
		}
	}
	for id := range w.prev {
		if !seen[id] {
			delete(w.prev, id)
			delete(w.acted, id)
			delete(w.refused, id)
			if c := w.rss[id]; c != nil {
				c.Close()
				delete(w.rss, id)
			}
		}
	}
	w.global(ctx, cfg, all, now)
}

func anyGrows(bs []watchdog.Breach) bool {
	for _, b := range bs {
		if b.Grows() {
			return true
		}
	}
	return false
}

// due limits handling to once per cool-down per instance: a frozen or
// stopping tree is not acted on again at every tick.
func (w *watcher) due(key string, cooldown time.Duration, now time.Time) bool {
	if t, ok := w.acted[key]; ok && now.Sub(t) < cooldown {
		return false
	}
	w.acted[key] = now
	return true
}

func (w *watcher) act(ctx context.Context, svc *service.Service, name, inst string, action config.OnLimit, u watchdog.Usage, l config.Limits, breaches []watchdog.Breach) {
	var parts []string
	for _, b := range breaches {
		parts = append(parts, b.String())
	}
	reason := strings.Join(parts, "; ")
	w.s.bus.Emit(journal.Event{Kind: journal.Runaway, Service: name, Instance: inst,
		Message: fmt.Sprintf("runaway: %s; action: %s", reason, action),
		Fields: map[string]string{
			"members": fmt.Sprint(u.Members), "rss": fmt.Sprint(u.RSS), "fork_rate": fmt.Sprintf("%.1f", u.ForkRate),
			"limit_processes": fmt.Sprint(l.Processes), "limit_memory": fmt.Sprint(l.Memory), "limit_fork_rate": fmt.Sprint(l.ForkRate),
			"gpu_memory": fmt.Sprint(u.GPUMemory), "limit_gpu_memory": fmt.Sprint(l.GPUMemory),
			"kind": breaches[0].Kind, "action": string(action),
		}})
	// Evidence first, while the tree is still there (and frozen).
	w.s.Bundle("runaway-"+name, false, "")
	svc.OnLimit(ctx, inst, action, reason)
}

// global checks the sum over all services against the daemon-wide limits;
// its action is a warning or a stop of the largest service.
func (w *watcher) global(ctx context.Context, cfg *config.File, all []sampled, now time.Time) {
	l := cfg.Watch.Limits
	if l.IsZero() || len(all) == 0 {
		return
	}
	var sum watchdog.Usage
	for _, x := range all {
		sum.Members += x.u.Members
		sum.RSS += x.u.RSS
		sum.ForkRate += x.u.ForkRate
		sum.GPUMemory += x.u.GPUMemory
	}
	breaches := watchdog.Check(l, sum)
	if len(breaches) == 0 || !w.due("global", cfg.Watch.BundleCooldown, now) {
		return
	}
	sort.Slice(all, func(i, j int) bool { return all[i].u.RSS > all[j].u.RSS })
	big := all[0]
	action := config.LimitWarn
	if cfg.Watch.OnLimit == config.LimitStop {
		action = config.LimitStop
	}
	w.act(ctx, big.svc, big.cfg.Name, big.inst, action, sum, l, breaches)
}

// SweepLeaks is the leak alarm: a process carrying the marker of an
// instance this daemon started, whose tree is no longer live, escaped its
// container. Each is journaled as a leak and reaped. It should never fire.
func (s *Supervisor) SweepLeaks(ctx context.Context) int {
	s.mu.Lock()
	known := make(map[string]string, len(s.instances))
	for id, svc := range s.instances {
		if !s.live[id] {
			known[id] = svc
		}
	}
	s.mu.Unlock()
	if len(known) == 0 {
		return 0
	}
	found, err := procinfo.Carriers(func(id string) bool { _, ok := known[id]; return ok })
	if err != nil {
		return 0
	}
	n := 0
	for id, sts := range found {
		pids := make([]int, len(sts))
		for i, st := range sts {
			pids[i] = st.PID
		}
		n += len(pids)
		s.bus.Emit(journal.Event{Kind: journal.Leak, Service: known[id], Instance: id,
			Message: fmt.Sprintf("LEAK: %d processes of ended instance %s outside any container: %v; reaping", len(pids), id, pids)})
		reclaim.Reap(ctx, []*journal.Instance{{ID: id, Service: known[id]}}, reclaim.Options{Bus: s.bus})
	}
	return n
}

// DefinitionsName is the store of services defined through the API in the
// state directory (internal/daemon keeps it; a bundle includes it).
const DefinitionsName = "services.json"

// Bundle writes a diagnostic bundle (for one service, or all with "").
// Unless force, one per reason per cool-down.
func (s *Supervisor) Bundle(reason string, force bool, only string) (string, bool, error) {
	cfg := s.Config()
	if s.opts.StateDir == "" {
		return "", false, fmt.Errorf("supervisor: no state directory for bundles")
	}
	b := &diag.Bundler{Dir: filepath.Join(s.opts.StateDir, "bundles"), Cooldown: cfg.Watch.BundleCooldown}
	files := map[string][]byte{}
	views := s.List(true)
	var trees strings.Builder
	for _, v := range views {
		if only != "" && v.Name != only {
			continue
		}
		fmt.Fprintf(&trees, "%s: %s (%s) instance %s, %d processes, %s\n", v.Name, v.State, v.Reason, v.Instance, v.MemberCount, render.Bytes(v.RSS))
		procs := make([]render.Proc, len(v.Members))
		for i, m := range v.Members {
			procs[i] = render.Proc{PID: m.PID, PPID: m.PPID, PGID: m.PGID, Cmdline: m.Cmdline, RSS: m.RSS}
		}
		render.Tree(&trees, "  ", procs, v.PID)
		if sink, err := s.Logs(v.Name); err == nil {
			var lb strings.Builder
			for _, l := range sink.Tail(200) {
				fmt.Fprintf(&lb, "%s %s %s\n", l.Time.Format(time.RFC3339Nano), l.Stream, l.Text)
			}
			files["logs/"+v.Name+".txt"] = []byte(lb.String())
		}
	}
	files["members.txt"] = []byte(trees.String())
	files["status.json"], _ = json.MarshalIndent(views, "", "  ")
	var ev strings.Builder
	for _, e := range s.bus.Recent(500) {
		b, _ := json.Marshal(e)
		ev.Write(append(b, '\n'))
	}
	files["events.jsonl"] = []byte(ev.String())
	if raw, err := os.ReadFile(cfg.Path); err == nil {
		files["corral.toml"] = []byte(diag.Redact(string(raw)))
	}
	// Services defined through the API are in the state directory, not in
	// the file; the bundle redacts it as every file.
	if f, err := statedir.OpenFile(s.opts.StateDir, DefinitionsName, os.O_RDONLY, 0); err == nil {
		if raw, err := io.ReadAll(io.LimitReader(f, 16<<20)); err == nil {
			files[DefinitionsName] = raw
		}
		f.Close()
	}
	ports := map[string][]string{}
	for _, n := range cfg.Names() {
		for _, p := range cfg.Services[n].Ports() {
			pids, listening, _ := procinfo.PortHolders(p)
			var who []string
			for _, pid := range pids {
				argv, _ := procinfo.Cmdline(pid)
				who = append(who, fmt.Sprintf("pid %d (%s) service %q", pid, strings.Join(argv, " "), s.OwnerOf(pid)))
			}
			if listening && len(who) == 0 {
				who = []string{"listening, holder not visible"}
			}
			ports[fmt.Sprintf("%s:%d", n, p)] = who
		}
	}
	files["ports.json"], _ = json.MarshalIndent(ports, "", "  ")
	var doc strings.Builder
	diag.RunDoctor().Print(&doc)
	files["doctor.txt"] = []byte(doc.String())
	path, skipped, err := b.Write(reason, force, files)
	if err == nil && !skipped {
		s.bus.Emit(journal.Event{Kind: journal.Bundle, Service: only, Message: "diagnostic bundle " + path + " (" + reason + ")"})
	}
	return path, skipped, err
}
