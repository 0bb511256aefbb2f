package supervisor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/corral-sh/corral/internal/config"
	"github.com/corral-sh/corral/internal/gpu"
	"github.com/corral-sh/corral/internal/journal"
	"github.com/corral-sh/corral/internal/logs"
	"github.com/corral-sh/corral/internal/procinfo"
	"github.com/corral-sh/corral/internal/reaper"
	"github.com/corral-sh/corral/internal/service"
	"github.com/corral-sh/corral/internal/statedir"
	"github.com/corral-sh/corral/proctree"
)

// Options configure a Supervisor.
type Options struct {
	// StateDir holds logs (StateDir/logs). Empty: logs stay in memory.
	StateDir    string
	Containment proctree.Containment
	Log         *slog.Logger
	Bus         *journal.Bus
	// Reclaim is handed to every service for the port preflight.
	Reclaim func(pid int) bool
	// KernelLimits lets services put limited trees in kernel pids groups.
	KernelLimits bool
	// StateKey (statedir.Key) is written into every member's CORRAL_STATE,
	// and CgroupParent is where trees' groups go (".../corral/KEY"): what
	// lets a daemon that lost its journal find its trees. Empty: none, and
	// proctree's default parent.
	StateKey     string
	CgroupParent string
	// Leftover says why a service must not start yet (an earlier run's tree
	// of it survived a reap); nil: never.
	Leftover func(service string) error
	// OwnsChildren says every child of this process is the supervisor's
	// (the daemon's case, not a library user's): at shutdown, children no
	// Wait collects are strays of its trees, killed and counted.
	OwnsChildren bool
	// GPU, if set, gives each tree's GPU memory in its view (nil, or no
	// nvidia-smi on the machine: none, and views say nothing of GPUs).
	GPU *gpu.Reader
	// ObserveProbe is handed to every service (service.Deps.ObserveProbe).
	ObserveProbe func(service, probe string, d time.Duration, err error)
}

// Supervisor runs the services of one configuration.
type Supervisor struct {
	opts Options
	bus  *journal.Bus

	// mu guards cfg, svcs, instances, live, closed and gpuStops. Never held while calling
	// into a service (a service's goroutine may call OwnerOf).
	mu        sync.Mutex
	cfg       *config.File
	svcs      map[string]*service.Service
	instances map[string]string // every instance id ever spawned → service
	live      map[string]bool   // instance ids whose tree may still hold processes
	closed    bool
	gpuStops  map[string]GPURelease // service → the GPU check of its last stop by Stop
	// verified maps a service's last stop report (as the service keeps it)
	// to the one verifyStop completed, which views show instead.
	verified map[string][2]*proctree.StopReport // service → {as kept, completed}

	// inherited holds the children this process had when the supervisor
	// was made, before it started anything: a start time says when a
	// process was forked, not when it exec'd, so `helper & exec corral
	// daemon` gives a helper younger than the daemon that is still not
	// ours. Written once in New.
	inherited map[procKey]bool
}

// procKey is a process's identity: pid and start time.
type procKey struct {
	pid   int
	start uint64
}

// ErrUnknown is returned (wrapped) for a service name not in the configuration.
var ErrUnknown = errors.New("unknown service")

// New builds the services of cfg; none is started.
func New(cfg *config.File, o Options) (*Supervisor, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Bus == nil {
		o.Bus = journal.NewBus(1000, nil)
	}
	if o.StateDir != "" {
		if _, err := statedir.MkdirIn(o.StateDir, "logs"); err != nil {
			return nil, fmt.Errorf("supervisor: %w", err)
		}
	}
	s := &Supervisor{opts: o, bus: o.Bus, cfg: cfg, svcs: map[string]*service.Service{},
		instances: map[string]string{}, live: map[string]bool{}, verified: map[string][2]*proctree.StopReport{},
		inherited: map[procKey]bool{}}
	for _, pid := range reaper.Children() {
		if st, err := procinfo.ReadStat(pid); err == nil {
			s.inherited[procKey{pid, st.StartTicks}] = true
		}
	}
	for _, name := range cfg.Names() {
		s.svcs[name] = s.newService(cfg, cfg.Services[name])
	}
	return s, nil
}

// track records an instance id when it is spawned (alive) and when its tree
// was verified empty. It is called synchronously by the services, so the
// survivor scan can never miss an instance.
func (s *Supervisor) track(service, instance string, alive bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if alive {
		s.instances[instance] = service
		s.live[instance] = true
	} else {
		delete(s.live, instance)
		if s.opts.OwnsChildren && !s.closed {
			// However the tree ended (a restart, a crash, a stop), strays its
			// marker names go with it; Stop also waits for this itself.
			go s.killStrays(context.Background(), func(st strayStat) bool { return st.instance == instance }, "with their tree")
		}
	}
}

func (s *Supervisor) newService(f *config.File, cfg *config.Service) *service.Service {
	sink := s.sinkFor(f, cfg)
	if err := sink.FileError(); err != nil {
		s.opts.Log.Warn("no log file", "service", cfg.Name, "err", err)
		s.bus.Emit(journal.Event{Kind: journal.Daemon, Service: cfg.Name, Message: "output kept in memory only: " + err.Error()})
	}
	return service.New(cfg, service.Deps{
		Containment:  s.opts.Containment,
		Logs:         sink,
		Bus:          s.bus,
		Log:          s.opts.Log.With("service", cfg.Name),
		OwnerOf:      s.OwnerOf,
		CgroupParent: s.opts.CgroupParent,
		StateKey:     s.opts.StateKey,
		Leftover:     s.opts.Leftover,
		Track:        s.track,
		Reclaim:      s.opts.Reclaim,
		KernelLimits: s.opts.KernelLimits,
		ObserveProbe: s.opts.ObserveProbe,
	})
}

// LiveInstances returns the ids of instances whose trees may hold processes.
func (s *Supervisor) LiveInstances() map[string]bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]bool, len(s.live))
	for id := range s.live {
		out[id] = true
	}
	return out
}

// Bus returns the event stream.
func (s *Supervisor) Bus() *journal.Bus { return s.bus }

// Config returns the configuration in force.
func (s *Supervisor) Config() *config.File {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg
}

// OwnerOf returns the service whose instance marker pid carries, or "".
func (s *Supervisor) OwnerOf(pid int) string {
	id := procinfo.Marker(pid)
	if id == "" {
		return ""
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.instances[id]
}

func (s *Supervisor) get(name string) (*service.Service, *config.Service, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, nil, service.ErrShutdown
	}
	svc, ok := s.svcs[name]
	if !ok {
		return nil, nil, fmt.Errorf("%w %q%s (configured: %s)", ErrUnknown, name, config.DidYouMean(name, s.cfg.Names()), strings.Join(s.cfg.Names(), ", "))
	}
	return svc, s.cfg.Services[name], nil
}

// ensureDeps makes every service that name starts after ready, first.
func (s *Supervisor) ensureDeps(ctx context.Context, cfg *config.Service, seen map[string]bool) error {
	for _, dep := range cfg.After {
		if seen[dep] {
			continue
		}
		seen[dep] = true
		if _, err := s.ensure(ctx, dep, seen); err != nil {
			return fmt.Errorf("%s starts after %s: %w", cfg.Name, dep, err)
		}
	}
	return nil
}

// Ensure makes name ready (and everything it starts after), starting what
// is needed; it returns at once for a ready service.
func (s *Supervisor) Ensure(ctx context.Context, name string) (service.Status, error) {
	return s.EnsureWith(ctx, name, service.StartOptions{})
}

// EnsureWith is Ensure with a profile (dependencies are ensured without).
func (s *Supervisor) EnsureWith(ctx context.Context, name string, o service.StartOptions) (service.Status, error) {
	svc, cfg, err := s.get(name)
	if err != nil {
		return service.Status{}, err
	}
	if err := s.ensureDeps(ctx, cfg, map[string]bool{name: true}); err != nil {
		return service.Status{}, err
	}
	return svc.EnsureWith(ctx, o)
}

func (s *Supervisor) ensure(ctx context.Context, name string, seen map[string]bool) (service.Status, error) {
	svc, cfg, err := s.get(name)
	if err != nil {
		return service.Status{}, err
	}
	if err := s.ensureDeps(ctx, cfg, seen); err != nil {
		return service.Status{}, err
	}
	return svc.Ensure(ctx)
}

// Start starts name (after its dependencies are ready).
func (s *Supervisor) Start(ctx context.Context, name, profile string, wait bool) (service.Status, error) {
	return s.StartWith(ctx, name, service.StartOptions{Profile: profile, Wait: wait})
}

// StartWith is Start with every option.
func (s *Supervisor) StartWith(ctx context.Context, name string, o service.StartOptions) (service.Status, error) {
	svc, cfg, err := s.get(name)
	if err != nil {
		return service.Status{}, err
	}
	if err := s.ensureDeps(ctx, cfg, map[string]bool{name: true}); err != nil {
		return service.Status{}, err
	}
	return svc.StartWith(ctx, o)
}

// Restart stops name completely, then starts it.
func (s *Supervisor) Restart(ctx context.Context, name, profile string, wait bool) (service.Status, error) {
	return s.RestartWith(ctx, name, service.StartOptions{Profile: profile, Wait: wait})
}

// RestartWith is Restart with every option: what o names replaces the
// instance's profile, arguments or environment; the rest is kept.
func (s *Supervisor) RestartWith(ctx context.Context, name string, o service.StartOptions) (service.Status, error) {
	svc, cfg, err := s.get(name)
	if err != nil {
		return service.Status{}, err
	}
	if err := s.ensureDeps(ctx, cfg, map[string]bool{name: true}); err != nil {
		return service.Status{}, err
	}
	return svc.RestartWith(ctx, o)
}

// Stop stops name and returns once its tree is verified empty, with the
// strays attributed to it; where its tier cannot prove that, the report's
// Unverified says why (see verifyStop). Where
// nvidia-smi answers, it also checks that the GPU memory the tree held was
// released: no member that held some is listed after the stop (the view's
// last_stop_gpu, and a daemon event).
func (s *Supervisor) Stop(ctx context.Context, name string) (service.Status, error) {
	svc, _, err := s.get(name)
	if err != nil {
		return service.Status{}, err
	}
	s.mu.Lock()
	delete(s.gpuStops, name) // a check is about the stop it followed
	s.mu.Unlock()
	var holders map[int]int64
	if s.opts.GPU != nil {
		holders = s.gpuHolders(ctx, svc)
	}
	instance := svc.Status().Instance
	if tr := svc.Tree(); tr != nil {
		instance = tr.ID()
	}
	before := svc.Status().LastStop
	st, err := svc.Stop(ctx)
	// Only a report this call produced: a service already stopped keeps an
	// older one, whose reasons are not this stop's.
	if err == nil && st.LastStop != nil && st.LastStop != before {
		rep := *st.LastStop
		if err = s.verifyStop(ctx, instance, &rep); err == nil {
			s.mu.Lock()
			s.verified[name] = [2]*proctree.StopReport{st.LastStop, &rep}
			s.mu.Unlock()
			st.LastStop = &rep
		}
	}
	if err == nil && len(holders) > 0 {
		s.checkGPURelease(ctx, name, holders)
	}
	return st, err
}

// GPURelease says whether the GPU memory a stopped tree held was released.
type GPURelease struct {
	Held     int64 `json:"held"`     // bytes its members held just before the stop
	Holders  int   `json:"holders"`  // members that held any
	Released bool  `json:"released"` // none of them is listed by nvidia-smi after the stop
	Left     []int `json:"left"`     // pids still listed after the stop
}

// gpuHolders returns the members of svc's tree that hold GPU memory (pid →
// bytes), or nil where nothing can be known.
func (s *Supervisor) gpuHolders(ctx context.Context, svc *service.Service) map[int]int64 {
	tr := svc.Tree()
	if tr == nil {
		return nil
	}
	ms, err := tr.Members()
	if err != nil {
		return nil
	}
	usage, err := s.opts.GPU.Refresh(ctx)
	if err != nil {
		return nil
	}
	out := map[int]int64{}
	for _, m := range ms {
		if b, ok := usage[m.PID]; ok {
			out[m.PID] = b
		}
	}
	return out
}

func (s *Supervisor) checkGPURelease(ctx context.Context, name string, holders map[int]int64) {
	r := GPURelease{Holders: len(holders), Left: []int{}}
	for _, b := range holders {
		r.Held += b
	}
	usage, err := s.opts.GPU.Refresh(ctx)
	if err != nil {
		s.bus.Emit(journal.Event{Kind: journal.Daemon, Service: name, Message: fmt.Sprintf("%s stopped; whether its GPU memory was released is unknown: %v", name, err)})
		return
	}
	for pid := range holders {
		if _, ok := usage[pid]; ok {
			r.Left = append(r.Left, pid)
		}
	}
	slices.Sort(r.Left)
	r.Released = len(r.Left) == 0
	s.mu.Lock()
	if s.gpuStops == nil {
		s.gpuStops = map[string]GPURelease{}
	}
	s.gpuStops[name] = r
	s.mu.Unlock()
	msg := fmt.Sprintf("%s stopped: its GPU memory was released (%d MiB held by %d members before the stop, none listed now)", name, r.Held>>20, r.Holders)
	if !r.Released {
		msg = fmt.Sprintf("%s stopped and its tree is empty, but nvidia-smi still lists pids %v of it holding GPU memory: the driver has not released it yet", name, r.Left)
	}
	s.bus.Emit(journal.Event{Kind: journal.Daemon, Service: name, Message: msg, Fields: map[string]string{"gpu_held": fmt.Sprint(r.Held), "gpu_released": fmt.Sprint(r.Released)}})
}

// View is a service's status with its member tree.
type View struct {
	service.Status
	Members     []Member `json:"members,omitempty"`
	MemberCount int      `json:"member_count"`
	RSS         int64    `json:"rss"`
	// CPUSeconds is the processor time of the live members (with the
	// children they waited for): a member's share leaves it when it exits.
	CPUSeconds float64 `json:"cpu_seconds"`
	// GPUMemory is the GPU memory the members hold (bytes), absent where
	// nvidia-smi is not installed or failed (then nothing is known).
	GPUMemory *int64 `json:"gpu_memory,omitempty"`
	// Profiles names the service's profiles (sorted), for a chooser.
	Profiles []string `json:"profiles"`
	// LastStopGPU is the GPU check of the last stop (corral stop), where
	// nvidia-smi answered and the tree held GPU memory before it.
	LastStopGPU *GPURelease `json:"last_stop_gpu,omitempty"`
}

// Member is one process of a tree, with its GPU memory where known.
type Member struct {
	proctree.Process
	GPUMemory *int64 `json:"gpu_memory,omitempty"`
}

func (s *Supervisor) view(svc *service.Service, cfg *config.Service, withMembers bool) View {
	v := View{Status: svc.Status(), Profiles: []string{}}
	s.mu.Lock()
	if r, ok := s.verified[svc.Name()]; ok && v.LastStop != nil && v.LastStop == r[0] {
		v.LastStop = r[1]
	}
	if r, ok := s.gpuStops[svc.Name()]; ok && len(s.gpuStops) > 0 {
		v.LastStopGPU = &r
	}
	s.mu.Unlock()
	if cfg != nil && len(cfg.Profiles) > 0 {
		v.Profiles = slices.Sorted(maps.Keys(cfg.Profiles))
	}
	tr := svc.Tree()
	if tr == nil {
		return v
	}
	ms, err := tr.Members()
	if err != nil {
		return v
	}
	var usage gpu.Usage
	if s.opts.GPU != nil {
		usage, _ = s.opts.GPU.Usage(context.Background()) // unavailable or failed: no figure rather than a wrong 0
	}
	v.MemberCount = len(ms)
	var gpuSum int64
	for _, m := range ms {
		v.RSS += m.RSS
		v.CPUSeconds += m.CPUSeconds
		mem := Member{Process: m}
		if usage != nil {
			b, ok := usage[m.PID]
			if ok {
				mem.GPUMemory = &b
			}
			gpuSum += b
		}
		if withMembers {
			v.Members = append(v.Members, mem)
		}
	}
	if usage != nil {
		v.GPUMemory = &gpuSum
	}
	return v
}

// Inspect returns one service's view with its members.
func (s *Supervisor) Inspect(name string) (View, error) {
	svc, cfg, err := s.get(name)
	if err != nil {
		return View{}, err
	}
	return s.view(svc, cfg, true), nil
}

// List returns every service's view, by name.
func (s *Supervisor) List(withMembers bool) []View {
	s.mu.Lock()
	svcs := make([]*service.Service, 0, len(s.svcs))
	cfgs := make([]*config.Service, 0, len(s.svcs))
	for _, n := range s.cfg.Names() {
		svcs = append(svcs, s.svcs[n])
		cfgs = append(cfgs, s.cfg.Services[n])
	}
	s.mu.Unlock()
	out := make([]View, len(svcs))
	var wg sync.WaitGroup
	for i, svc := range svcs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = s.view(svc, cfgs[i], withMembers)
		}()
	}
	wg.Wait()
	return out
}

// Logs returns a service's output sink.
func (s *Supervisor) Logs(name string) (*logs.Sink, error) {
	svc, _, err := s.get(name)
	if err != nil {
		return nil, err
	}
	return svc.Logs(), nil
}

// AutoStart ensures every autostart service, dependencies first, services
// of one dependency level in parallel. It returns the first errors joined.
func (s *Supervisor) AutoStart(ctx context.Context) error {
	cfg := s.Config()
	levels, err := cfg.StartOrder()
	if err != nil {
		return err
	}
	var errs []error
	for _, level := range levels {
		var mu sync.Mutex
		var wg sync.WaitGroup
		for _, name := range level {
			if !cfg.Services[name].Autostart {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := s.Ensure(ctx, name); err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("%s: %w", name, err))
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
	}
	return errors.Join(errs...)
}

// ReloadResult says what a reload did.
type ReloadResult struct {
	Added     []string `json:"added"`
	Removed   []string `json:"removed"`
	Changed   []string `json:"changed"`
	Unchanged []string `json:"unchanged"`
}

// Reload applies cfg: new services are added (and started if autostart),
// removed ones stopped, changed ones reconfigured and restarted if they
// were running, unchanged ones left alone.
func (s *Supervisor) Reload(ctx context.Context, cfg *config.File) (ReloadResult, error) {
	return s.Apply(ctx, cfg, "reloaded "+cfg.Path)
}

// Apply is Reload for a configuration that changed for another reason
// (a service defined through the API); what says why, in the daemon event
// that reports the change.
func (s *Supervisor) Apply(ctx context.Context, cfg *config.File, what string) (ReloadResult, error) {
	var res ReloadResult
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return res, service.ErrShutdown
	}
	old := s.cfg
	removed := map[string]*service.Service{}
	var changed []*service.Service
	for name, svc := range s.svcs {
		if _, ok := cfg.Services[name]; !ok {
			removed[name] = svc
			res.Removed = append(res.Removed, name)
		}
	}
	for _, name := range cfg.Names() {
		nc := cfg.Services[name]
		oc, ok := old.Services[name]
		switch {
		case !ok:
			s.svcs[name] = s.newService(cfg, nc)
			res.Added = append(res.Added, name)
		case !reflect.DeepEqual(comparable(oc), comparable(nc)):
			changed = append(changed, s.svcs[name])
			res.Changed = append(res.Changed, name)
		default:
			res.Unchanged = append(res.Unchanged, name)
		}
	}
	for name := range removed {
		delete(s.svcs, name)
	}
	s.cfg = cfg
	s.mu.Unlock()
	s.configureSinks(cfg)
	sort.Strings(res.Removed)

	var errs []error
	for name, svc := range removed {
		if _, err := svc.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stopping removed service %s: %w", name, err))
		}
		svc.Close()
		closeSink(svc)
	}
	for _, svc := range changed {
		svc.Configure(cfg.Services[svc.Name()])
		if st := svc.Status(); st.State.Running() {
			if _, err := svc.Restart(ctx, st.Profile, false); err != nil {
				errs = append(errs, fmt.Errorf("restarting changed service %s: %w", svc.Name(), err))
			}
		}
	}
	for _, name := range res.Added {
		if cfg.Services[name].Autostart {
			if _, err := s.Start(ctx, name, "", false); err != nil {
				errs = append(errs, fmt.Errorf("starting new service %s: %w", name, err))
			}
		}
	}
	s.bus.Emit(journal.Event{Kind: journal.Daemon, Message: fmt.Sprintf("%s: %d added, %d removed, %d changed, %d unchanged",
		what, len(res.Added), len(res.Removed), len(res.Changed), len(res.Unchanged))})
	return res, errors.Join(errs...)
}

// Remove takes name out of the configuration: it is stopped completely
// first (the verified stop of Stop), then commit runs (the daemon makes
// the removal durable), then cfg, the configuration without it, takes
// effect. A stop that cannot empty the tree, or a commit that fails,
// changes nothing: the service stays, stop-failed or stopped. What a start
// slipped in between the stop and the removal is stopped as completely.
// The status is the service's last, with the stop's report.
func (s *Supervisor) Remove(ctx context.Context, name string, cfg *config.File, commit func() error) (service.Status, error) {
	svc, _, err := s.get(name)
	if err != nil {
		return service.Status{}, err
	}
	if _, ok := cfg.Services[name]; ok {
		return svc.Status(), fmt.Errorf("supervisor: removing %s: the new configuration still has it", name)
	}
	st, err := svc.Stop(ctx)
	if err != nil {
		return st, err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return st, service.ErrShutdown
	}
	old := s.cfg
	delete(s.svcs, name)
	s.cfg = cfg
	s.mu.Unlock()
	// From here no request finds it; Shutdown stops what one that found
	// it just before may have started, and refuses every later one. Only
	// once that is verified is the definition forgotten: a tree that
	// could not be emptied keeps its service, visible and holding its
	// name, so that no second instance can be defined beside it.
	last, err := svc.Shutdown(ctx)
	if err != nil {
		s.mu.Lock()
		if !s.closed {
			s.svcs[name], s.cfg = svc, old
		}
		s.mu.Unlock()
		s.bus.Emit(journal.Event{Kind: journal.Daemon, Service: name, Message: fmt.Sprintf("not removing %s: stopping what started meanwhile failed: %v", name, err)})
		return last, err
	}
	if last.Starts > st.Starts {
		st = last
	}
	if err := commit(); err != nil {
		// Stopped and gone from this daemon; the stored definition stays,
		// and the next daemon start brings the service back (stopped
		// unless autostart).
		svc.Close()
		closeSink(svc)
		return st, err
	}
	svc.Close()
	closeSink(svc)
	s.bus.Emit(journal.Event{Kind: journal.Daemon, Service: name, Message: fmt.Sprintf("removed service %s (stopped, 0 left)", name)})
	return st, nil
}

// comparable drops what cannot be compared by value (compiled patterns are
// compared by their source).
func comparable(c *config.Service) any {
	type probe struct {
		config.Probe
		Body, Log string
	}
	mk := func(p config.Probe) probe {
		q := probe{Probe: p}
		if p.Body != nil {
			q.Body = p.Body.String()
		}
		if p.Log != nil {
			q.Log = p.Log.String()
		}
		q.Probe.Body, q.Probe.Log = nil, nil
		return q
	}
	cc := *c
	cc.Logs = config.LogSettings{} // applied to the running sink, no restart
	ready, health := mk(c.Ready), mk(c.Health.Probe)
	cc.Ready, cc.Health.Probe = config.Probe{}, config.Probe{}
	return struct {
		C      config.Service
		R, H   probe
		Failed int
	}{cc, ready, health, c.Health.Failures}
}

// Survivor is a process of ours still alive after a shutdown.
type Survivor struct {
	Service  string   `json:"service"`
	Instance string   `json:"instance"`
	PID      int      `json:"pid"`
	Cmdline  []string `json:"cmdline"`
}

// ShutdownResult is the outcome of a verified shutdown.
type ShutdownResult struct {
	Stopped   []string   `json:"stopped"`
	Errors    []string   `json:"errors"`
	Survivors []Survivor `json:"survivors"`
	// Unverified names each service whose tree could not be proved empty
	// in its tier ("SERVICE: why"): the shutdown is then not verified even
	// with no survivor found.
	Unverified []string `json:"unverified"`
}

// Shutdown stops every service in reverse dependency order (each level in
// parallel), refuses further starts, and then scans the process table for
// any process carrying the marker of any instance this supervisor ever
// started. The result's Survivors must be empty.
func (s *Supervisor) Shutdown(ctx context.Context) ShutdownResult {
	res := ShutdownResult{Unverified: []string{}}
	s.mu.Lock()
	s.closed = true
	cfg := s.cfg
	svcs := make(map[string]*service.Service, len(s.svcs))
	for n, svc := range s.svcs {
		svcs[n] = svc
	}
	s.mu.Unlock()
	levels, err := cfg.StartOrder()
	if err != nil {
		levels = [][]string{cfg.Names()}
	}
	var mu sync.Mutex
	var unverified []struct{ name, why string }
	for i := len(levels) - 1; i >= 0; i-- {
		var wg sync.WaitGroup
		for _, name := range levels[i] {
			svc := svcs[name]
			if svc == nil {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				before := svc.Status().LastStop
				st, err := svc.Shutdown(ctx)
				mu.Lock()
				defer mu.Unlock()
				if r := st.LastStop; r != nil && r != before && r.Unverified != "" {
					unverified = append(unverified, struct{ name, why string }{name, r.Unverified})
				}
				if err != nil {
					res.Errors = append(res.Errors, fmt.Sprintf("%s: %v", name, err))
				} else {
					res.Stopped = append(res.Stopped, name)
				}
			}()
		}
		wg.Wait()
	}
	sort.Strings(res.Stopped)
	for _, svc := range svcs {
		closeSink(svc)
	}
	res.Survivors = s.Survivors()
	// As PID 1, an orphan no marker, group or ancestry ties to a tree may
	// be anyone's (docker exec's): listed in status, never killed.
	left := s.killStrays(ctx, func(st strayStat) bool { return st.instance != "" || !reaper.InitMode() }, "at shutdown")
	for _, st := range left {
		inst := st.Instance
		if inst == "" {
			inst = "escaped"
		}
		res.Survivors = append(res.Survivors, Survivor{Service: orUnknown(st.Service), Instance: inst, PID: st.PID, Cmdline: st.Cmdline})
	}
	// A tree that could not prove itself empty is resolved by the stray
	// scan where that covers its gap (every stray is gone now); otherwise
	// the shutdown says which and is not verified.
	for _, u := range unverified {
		if len(left) > 0 || !s.strayProves(u.why) {
			res.Unverified = append(res.Unverified, u.name+": "+u.why)
		}
	}
	sort.Strings(res.Unverified)
	s.bus.Emit(journal.Event{Kind: journal.Daemon, Message: fmt.Sprintf("shutdown: %d services stopped, %d survivors", len(res.Stopped), len(res.Survivors))})
	return res
}

// Survivors scans the process table for processes carrying the marker of
// any instance this supervisor started.
func (s *Supervisor) Survivors() []Survivor {
	s.mu.Lock()
	ids := make(map[string]string, len(s.instances))
	for id, svc := range s.instances {
		ids[id] = svc
	}
	s.mu.Unlock()
	found, err := procinfo.Carriers(func(id string) bool { _, ok := ids[id]; return ok })
	if errors.Is(err, errors.ErrUnsupported) {
		// No process table with environments here (Windows): every tree is
		// a job whose stop was verified empty by the kernel's count; a tree
		// that did not empty is named by its service's stop error instead.
		return []Survivor{}
	}
	if err != nil {
		return []Survivor{{Service: "?", Cmdline: []string{"cannot scan processes: " + err.Error()}}}
	}
	out := []Survivor{}
	for id, sts := range found {
		for _, st := range sts {
			argv, _ := procinfo.Cmdline(st.PID)
			out = append(out, Survivor{Service: ids[id], Instance: id, PID: st.PID, Cmdline: argv})
		}
	}
	return out
}
