package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gofrs/flock"

	"github.com/corral-sh/corral/internal/api"
	"github.com/corral-sh/corral/internal/config"
	"github.com/corral-sh/corral/internal/containment"
	"github.com/corral-sh/corral/internal/dashboard"
	"github.com/corral-sh/corral/internal/gpu"
	"github.com/corral-sh/corral/internal/ipc"
	"github.com/corral-sh/corral/internal/journal"
	"github.com/corral-sh/corral/internal/logs"
	"github.com/corral-sh/corral/internal/metrics"
	"github.com/corral-sh/corral/internal/procinfo"
	"github.com/corral-sh/corral/internal/reaper"
	"github.com/corral-sh/corral/internal/reclaim"
	"github.com/corral-sh/corral/internal/statedir"
	"github.com/corral-sh/corral/internal/supervisor"
	"github.com/corral-sh/corral/proctree"
)

// Options configure Run.
type Options struct {
	ConfigPath  string
	StateDir    string
	Containment proctree.Containment
	Version     string
	Log         *slog.Logger
	// Listening, if set, is called once the control socket accepts requests.
	Listening func()
	// Keeper, if set, returns the command of the keeper process (which runs
	// RunKeeper on fd 3), started detached from the daemon's session. Nil:
	// no keeper, and a SIGKILLed daemon's services are reaped only by the
	// next daemon start.
	Keeper func() *exec.Cmd
	// ExitWith, if set, is a process whose exit triggers a verified shutdown
	// (the desktop app that launched corral beside itself).
	ExitWith int
	// LogFile, if set, is the daemon's own log file (daemon.log), rotated
	// as [corral] logs says (daemonlog.go).
	LogFile *logs.File
}

// LockName is the lock file in the state directory.
const LockName = "daemon.lock"

// ErrRunning is returned when another daemon holds the state directory.
var ErrRunning = errors.New("daemon: another corral daemon is running")

// Info is what GET /v1/daemon answers.
type Info struct {
	PID      int       `json:"pid"`
	Version  string    `json:"version"`
	Config   string    `json:"config"`
	StateDir string    `json:"state_dir"`
	Started  time.Time `json:"started"`
	// Mechanism is the containment new trees get here (cgroup-v2, pgroup,
	// job-object; "none" when no tree can start), resolved when the daemon
	// started: what a program may rely on, unlike the requested "auto".
	Mechanism string `json:"mechanism"`
	// Containment is what was asked for (auto, cgroup, pgroup).
	Containment string `json:"containment"`
	// MechanismNote says why Mechanism is not the platform's best (auto
	// settled for process groups) or why no tree can start.
	MechanismNote string `json:"mechanism_note,omitempty"`
	// ConfigSHA256 is the SHA-256 (hex) of the configuration file as the
	// daemon last read it (at its start, or at the last reload that took
	// effect), at ConfigRead: corral up compares it with the file.
	ConfigSHA256 string    `json:"config_sha256"`
	ConfigRead   time.Time `json:"config_read"`
	// ExitWith is the process whose exit shuts the daemon down (--exit-with), 0 for none.
	ExitWith int `json:"exit_with,omitempty"`
	// Dashboard is where the dashboard listens (127.0.0.1:PORT), absent
	// when it does not run. Its URL, with the token, is the answer of POST
	// /v1/dashboard, never part of this (bundles include it).
	Dashboard string `json:"dashboard,omitempty"`
	// Strays are processes re-parented to the daemon that no live tree
	// holds (supervisor.Stray); never null.
	Strays []supervisor.Stray `json:"strays"`
}

// configRead is the configuration file as the daemon last applied it.
type configRead struct {
	digest string
	at     time.Time
}

type daemon struct {
	o       Options
	sup     *supervisor.Supervisor
	info    Info
	stopMu  sync.Mutex // serialises shutdown; guards result
	result  *supervisor.ShutdownResult
	stopped chan struct{} // closed once the verified shutdown is done
	reloads sync.Mutex    // one reload, definition or removal at a time; guards file and defs
	// file is the configuration file's as last applied; defs the services
	// defined through the API, as stored (defined.go).
	file    *config.File
	defs    map[string]json.RawMessage
	cfgRead atomic.Pointer[configRead]

	journalPath string
	stateKey    string // statedir.Key(o.StateDir): names our cgroups and markers

	metrics *metrics.Metrics
	api     http.Handler
	dashCtx context.Context // the dashboard's life: ends with the daemon
	dashMu  sync.Mutex      // guards dash
	dash    *dashboard.Server
	// httpAddr is [corral] http as the daemon started with it: the
	// dashboard's address is read once (a reload does not move it).
	httpAddr string

	leftMu  sync.Mutex                    // guards left and pending
	left    map[string]string             // service → why an earlier run's tree of it may still be alive
	pending map[string][]proctree.Process // service → killed processes of an earlier run not yet reaped by their parent
}

func (d *daemon) Supervisor() *supervisor.Supervisor { return d.sup }

func (d *daemon) Info() any {
	info := d.info
	if r := d.cfgRead.Load(); r != nil {
		info.ConfigSHA256, info.ConfigRead = r.digest, r.at
	}
	d.dashMu.Lock()
	if d.dash != nil {
		if u, err := url.Parse(d.dash.URL()); err == nil {
			info.Dashboard = u.Host
		}
	}
	d.dashMu.Unlock()
	info.Strays = d.sup.Strays()
	return info
}

// Metrics serves the daemon's metrics (GET /metrics).
func (d *daemon) Metrics() http.Handler { return d.metrics.Handler() }

// Dashboard starts the dashboard on addr ("": the configured address, else
// any free port of 127.0.0.1) unless one runs, and returns its URL.
func (d *daemon) Dashboard(addr string) (string, error) {
	d.dashMu.Lock()
	defer d.dashMu.Unlock()
	if d.dash != nil {
		return d.dash.URL(), nil
	}
	if addr == "" {
		addr = d.httpAddr
	}
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	s := dashboard.New(dashboard.Options{API: d.api, Metrics: d.metrics.Handler(), Log: d.o.Log})
	u, err := s.Serve(d.dashCtx, addr)
	if err != nil {
		return "", err
	}
	d.dash = s
	if pu, err := url.Parse(u); err == nil {
		d.sup.Bus().Emit(journal.Event{Kind: journal.Daemon, Message: "dashboard listening on " + pu.Host + " (corral dashboard prints its URL)", Fields: map[string]string{"addr": pu.Host}})
	}
	return u, nil
}

// dashboardDone waits for the dashboard, if one ran, to have stopped.
func (d *daemon) dashboardDone() {
	d.dashMu.Lock()
	s := d.dash
	d.dashMu.Unlock()
	if s != nil {
		<-s.Done()
	}
}

func (d *daemon) Reload(ctx context.Context) (supervisor.ReloadResult, error) {
	d.reloads.Lock()
	defer d.reloads.Unlock()
	cfg, err := config.Load(d.o.ConfigPath)
	if err != nil {
		d.sup.Bus().Emit(journal.Event{Kind: journal.Daemon, Message: "reload rejected, keeping the running configuration: " + err.Error()})
		return supervisor.ReloadResult{}, fmt.Errorf("reload rejected, nothing changed: %w", err)
	}
	// Services defined through the API stay beside the file's.
	m, err := mergeDefinitions(cfg, d.defs, d.inForce())
	if err != nil {
		err = fmt.Errorf("reload rejected, nothing changed: %w (a service defined through the API, in %s, starts after a service the file no longer has: change it with PUT /v1/services/NAME or remove it with DELETE first)", err, DefinitionsName)
		d.sup.Bus().Emit(journal.Event{Kind: journal.Daemon, Message: err.Error()})
		return supervisor.ReloadResult{}, err
	}
	res, err := d.sup.Reload(ctx, m.cfg)
	if d.sup.Config() == m.cfg { // it took effect, even if a service's stop failed
		d.file = cfg
		rotateDaemonLog(d.o.LogFile, cfg)
		d.report(m, d.sup.Bus())
		d.cfgRead.Store(&configRead{digest: cfg.Digest, at: time.Now()})
	}
	return res, err
}

// Reap reclaims instances the journal says may be alive that this daemon
// does not run: leftovers of an earlier run.
func (d *daemon) Reap(ctx context.Context, dryRun bool) ([]reclaim.Report, error) {
	return d.reapOthers(ctx, "", dryRun)
}

// reapOthers reaps (or lists) what may be alive of earlier runs — by the
// journal and by Discover — and is not run by this daemon; only service's
// instances unless it is "". It clears the services it then finds empty
// and forgets the journal records of instances with nothing left.
func (d *daemon) reapOthers(ctx context.Context, service string, dryRun bool) ([]reclaim.Report, error) {
	events, _, err := journal.ReadFile(d.journalPath)
	if err != nil {
		return nil, err
	}
	found, derr := reclaim.Discover(d.stateKey)
	all, _ := reclaim.Merge(journal.Live(events), found)
	mine := d.sup.LiveInstances()
	var live []*journal.Instance
	for _, in := range all {
		if !mine[in.ID] && (service == "" || in.Service == service) {
			live = append(live, in)
		}
	}
	rs := reclaim.Reap(ctx, live, reclaim.Options{DryRun: dryRun, Bus: d.sup.Bus()})
	if !dryRun {
		d.settle(rs, service, derr)
	}
	return rs, nil
}

// settle records what a reap could not stop (those services start nothing
// until a reap finds them empty) and forgets the journal records of
// instances it found nothing of.
func (d *daemon) settle(rs []reclaim.Report, service string, discoverErr error) {
	left := map[string]string{}
	forget := map[string]bool{}
	for _, r := range rs {
		switch {
		case r.Error != "":
			left[r.Service] = fmt.Sprintf("instance %s of an earlier run could not be stopped: %s", r.Instance, r.Error)
		case r.Gone:
			forget[r.Instance] = true
		}
	}
	d.leftMu.Lock()
	if service == "" {
		d.left = left
	} else if why, ok := left[service]; ok {
		d.left[service] = why
	} else {
		delete(d.left, service)
	}
	d.leftMu.Unlock()
	if discoverErr != nil {
		d.sup.Bus().Emit(journal.Event{Kind: journal.Daemon, Message: "finding leftovers without the journal was incomplete: " + discoverErr.Error()})
	}
	if f := d.sup.Bus().File(); f != nil && len(forget) > 0 {
		if err := f.Forget(forget, keepEvents); err != nil {
			d.o.Log.Warn("journal: forget ended records", "err", err)
		}
	}
}

// waitPending waits (bounded) until the processes an earlier run's reap
// killed are gone from the process table: a program that checks its old
// pid ("Already running on PID ...", postmaster.pid) would refuse to start
// while a zombie of it is unreaped. The daemon answered meanwhile; only
// this service waited.
func (d *daemon) waitPending(service string, pending []proctree.Process) {
	bus := d.sup.Bus()
	const limit = 10 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), limit+time.Second)
	defer cancel()
	left := reclaim.WaitGone(ctx, pending, limit, func(z []int) {
		bus.Emit(journal.Event{Kind: journal.Reaped, Service: service,
			Message: fmt.Sprintf("%s starts once pids %v, killed by the reap of an earlier run, are reaped by their parent (waiting at most %v)", service, z, limit)})
	})
	if len(left) > 0 {
		bus.Emit(journal.Event{Kind: journal.Reaped, Service: service,
			Message: fmt.Sprintf("pids %v of an earlier run are still unreaped by their parent after %v (dead, holding only their pid); %s starts now", left, limit, service)})
	}
	d.leftMu.Lock()
	delete(d.pending, service)
	d.leftMu.Unlock()
}

// leftover says why service must not start (an earlier run's tree of it
// survived a reap). Each start tries the reap again, so a tree that has
// gone since (or that the user stopped) lets the service start.
func (d *daemon) leftover(service string) error {
	d.leftMu.Lock()
	_, blocked := d.left[service]
	pending := d.pending[service]
	d.leftMu.Unlock()
	if len(pending) > 0 {
		d.waitPending(service, pending)
	}
	if !blocked {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := d.reapOthers(ctx, service, false); err != nil {
		return fmt.Errorf("an earlier run's tree of %s may still be alive and the journal cannot be read to reap it: %w", service, err)
	}
	d.leftMu.Lock()
	why, blocked := d.left[service]
	d.leftMu.Unlock()
	if blocked {
		return fmt.Errorf("%s; nothing starts beside it: stop those processes (corral reap retries) and start again", why)
	}
	return nil
}

// reclaimHolder reaps the instance a port holder belongs to when that is a
// leftover of an earlier run: its marker names an instance of our journal
// that no service of this daemon runs. A process without our marker is
// never touched.
func (d *daemon) reclaimHolder(pid int) bool {
	m := procinfo.ReadMarkers(pid)
	if m.Instance == "" || d.sup.LiveInstances()[m.Instance] {
		return false
	}
	events, _, err := journal.ReadFile(d.journalPath)
	if err != nil {
		return false
	}
	in := journal.Fold(events)[m.Instance]
	if in == nil {
		if m.State != d.stateKey {
			return false // another corral's, or no corral's: never ours to stop
		}
		// Ours by its state key, though the journal lost its record.
		in = &journal.Instance{ID: m.Instance, Service: m.Service, Unjournaled: true}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rs := reclaim.Reap(ctx, []*journal.Instance{in}, reclaim.Options{Bus: d.sup.Bus()})
	return len(rs) == 1 && rs[0].Error == ""
}

func (d *daemon) Shutdown(ctx context.Context) supervisor.ShutdownResult {
	d.stopMu.Lock()
	defer d.stopMu.Unlock()
	if d.result == nil {
		res := d.sup.Shutdown(ctx)
		d.result = &res
		close(d.stopped)
	}
	return *d.result
}

// Run runs the daemon until a shutdown (signal, API, or ctx) and returns the
// verified shutdown's result.
func Run(ctx context.Context, o Options) (supervisor.ShutdownResult, error) {
	var zero supervisor.ShutdownResult
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	lock, err := takeLock(o.StateDir)
	if err != nil {
		return zero, err
	}
	defer lock.Unlock()

	cfg, err := config.Load(o.ConfigPath)
	if err != nil {
		return zero, err
	}
	rotateDaemonLog(o.LogFile, cfg)
	mode := o.Containment
	if mode == proctree.Auto && cfg.Containment != "" {
		mode, _ = proctree.ParseContainment(cfg.Containment)
	}
	if mode, err = containment.FromEnv(mode); err != nil {
		return zero, err
	}
	if os.Getpid() == 1 {
		// A container's init: every orphan of the namespace is ours to reap.
		reaper.EnableInitMode()
		o.Log.Info("running as PID 1: reaping every orphan; SIGTERM runs the verified shutdown")
	}
	bus := journal.NewBus(2000, nil)
	jpath := filepath.Join(o.StateDir, journal.FileName)
	key := statedir.Key(o.StateDir)
	defer removeKeyGroup(key)
	left, pending, err := recoverLeftovers(o.StateDir, key, jpath, bus, o.Log)
	if err != nil {
		return zero, err
	}
	cgParent := cgroupParent(key)
	d := &daemon{o: o, stopped: make(chan struct{}), journalPath: jpath, stateKey: key, left: left, pending: pending, info: Info{
		PID: os.Getpid(), Version: o.Version, Config: o.ConfigPath, StateDir: o.StateDir, ExitWith: max(o.ExitWith, 0),
		Started: time.Now(), Containment: containmentName(mode),
	}}
	d.info.Mechanism, d.info.MechanismNote = mechanismInUse(mode, cgParent)
	defs, aside, err := readDefinitions(o.StateDir, time.Now())
	if err != nil {
		return zero, err
	}
	if aside != "" {
		bus.Emit(journal.Event{Kind: journal.Daemon, Message: fmt.Sprintf("%s was not a store of services (not JSON): kept aside as %s; the daemon starts without the services defined through the API", DefinitionsName, aside)})
	}
	d.file, d.defs = cfg, defs
	defined, err := mergeDefinitions(cfg, defs, nil)
	if err != nil {
		return zero, err
	}
	d.report(defined, bus)
	// The metrics read the supervisor at each scrape, and count what only
	// events say from now on (the tap sees every event, unlike a
	// subscription).
	d.metrics = metrics.New(viewsOf(func(members bool) []supervisor.View { return d.sup.List(members) }), o.Log)
	bus.Tap(d.metrics.Observe)
	sup, err := supervisor.New(defined.cfg, supervisor.Options{StateDir: o.StateDir, Containment: mode, Log: o.Log, Bus: bus,
		Reclaim: d.reclaimHolder, KernelLimits: os.Getenv("CORRAL_KERNEL_LIMITS") != "off",
		StateKey: key, CgroupParent: cgParent, Leftover: d.leftover, OwnsChildren: true,
		GPU: &gpu.Reader{}, ObserveProbe: d.metrics.ObserveProbe})
	if err != nil {
		return zero, err
	}
	d.sup = sup
	d.cfgRead.Store(&configRead{digest: cfg.Digest, at: time.Now()})
	ln, err := ipc.Listen(o.StateDir)
	if err != nil {
		return zero, err
	}
	// The endpoint file tells clients (the Python one, an app on Windows)
	// where to connect without re-deriving the pipe's name.
	if err := WriteEndpoint(o.StateDir, os.Getpid()); err != nil {
		ln.Close()
		return zero, err
	}
	defer RemoveEndpoint(o.StateDir, os.Getpid())
	if o.Keeper != nil {
		k, err := startKeeper(o.Keeper, o.Log)
		if err != nil {
			ln.Close()
			return zero, fmt.Errorf("daemon: start keeper: %w", err)
		}
		defer k.close()
	}
	exitWith := make(chan struct{})
	if o.ExitWith > 0 {
		go func() {
			waitPID(o.ExitWith)
			bus.Emit(journal.Event{Kind: journal.Daemon, Message: fmt.Sprintf("process %d (--exit-with) exited: shutting down", o.ExitWith)})
			close(exitWith)
		}()
	}
	d.api = api.Handler(d, o.Log)
	dashCtx, stopDash := context.WithCancel(context.Background())
	defer func() { stopDash(); d.dashboardDone() }()
	d.dashCtx = dashCtx
	srv := &http.Server{Handler: d.api, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: ipc.IdleTimeout}
	go srv.Serve(ipc.Keep(ln, func(err error) { bus.Emit(journal.Event{Kind: journal.Daemon, Message: err.Error()}) }))
	defer os.Remove(ipc.Path(o.StateDir))
	bus.Emit(journal.Event{Kind: journal.Daemon, Message: fmt.Sprintf("daemon %d started: %s, %d services (%d defined through the API), state %s", os.Getpid(), o.ConfigPath, len(defined.cfg.Services), len(defined.cfg.Services)-len(cfg.Services), o.StateDir)})
	d.httpAddr = cfg.HTTP
	if cfg.HTTP != "" {
		// A dashboard that cannot listen (its port taken) is no reason to
		// leave the services unsupervised: said, and the daemon goes on.
		if _, err := d.Dashboard(cfg.HTTP); err != nil {
			bus.Emit(journal.Event{Kind: journal.Daemon, Message: "no dashboard: " + err.Error() + "; corral dashboard starts one on another port"})
		}
	}
	if o.Listening != nil {
		o.Listening()
	}

	watchCtx, stopWatch := context.WithCancel(context.Background())
	defer stopWatch()
	go sup.Watch(watchCtx)
	go func() {
		if err := sup.AutoStart(context.Background()); err != nil {
			o.Log.Warn("autostart", "err", err)
		}
		// Starting many services leaves garbage a long-running daemon should
		// not keep resident; return it once.
		debug.FreeOSMemory()
	}()

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, os.Interrupt)
	defer signal.Stop(sigs)
loop:
	for {
		select {
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				if res, err := d.Reload(context.Background()); err != nil {
					o.Log.Error("reload", "err", err)
				} else {
					o.Log.Info("reloaded", "added", res.Added, "removed", res.Removed, "changed", res.Changed)
				}
				continue
			}
			o.Log.Info("signal: verified shutdown", "signal", sig.String())
			break loop
		case <-ctx.Done():
			break loop
		case <-d.stopped:
			break loop
		case <-exitWith:
			break loop
		}
	}
	stopWatch() // the watchdog must not act on trees being stopped
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	res := d.Shutdown(sctx)
	// Let an API shutdown's answer reach its caller before the socket goes.
	hctx, hcancel := context.WithTimeout(context.Background(), 2*time.Second)
	srv.Shutdown(hctx)
	hcancel()
	return res, nil
}

func containmentName(c proctree.Containment) string {
	if c == proctree.Auto {
		return "auto"
	}
	return string(c)
}

// mechanismInUse is the containment the supervisor's trees get (the same
// options it passes to proctree), and why it is not the best one here.
func mechanismInUse(c proctree.Containment, cgParent string) (string, string) {
	m, fallback, err := proctree.Resolve(proctree.Options{Containment: c, CgroupParent: cgParent})
	if err != nil {
		return "none", "no service can start: " + err.Error()
	}
	return string(m), fallback
}

// recoverLeftovers opens the journal for bus and, before anything starts,
// reaps every instance an earlier run may have left alive: those its
// journal records and those found without it (their cgroups under
// corral/KEY, their members' CORRAL_STATE=KEY), so that a truncated,
// damaged, emptied or deleted journal hides no tree. A damaged journal is
// kept aside, never dropped. It returns the services whose leftovers could
// not be stopped: they start nothing until a reap finds them empty. An
// error means nothing can start safely (the journal cannot be written);
// what could be reaped was reaped first all the same.
func recoverLeftovers(stateDir, key, path string, bus *journal.Bus, log *slog.Logger) (left map[string]string, pending map[string][]proctree.Process, err error) {
	began := time.Now()
	// The journal is read once: what the reap needs and what is rewritten
	// are worked out in memory, so its length costs one read and at most
	// one write (60,000 stale records: see BenchmarkRecover60kStaleRecords).
	events, damage, rerr := journal.Check(path)
	var aside string
	if rerr == nil && damage.Damaged() {
		var err error
		if aside, err = journal.KeepAside(path, events, time.Now()); err != nil {
			rerr = fmt.Errorf("daemon: journal %s is damaged and could not be kept aside: %w", path, err)
		}
	}
	found, derr := reclaim.Discover(key)
	live, unjournaled := reclaim.Merge(journal.Live(events), found)
	gone := reclaim.Gone(live)
	if rerr == nil && (len(gone) > 0 || journal.Size(path) > compactAbove) {
		events = journal.Compacted(events, keepEvents, gone)
		if err := journal.Rewrite(path, events); err != nil {
			log.Warn("journal compaction", "err", err)
		}
	}
	if rerr == nil {
		if f, err := journal.OpenFile(path); err != nil {
			rerr = err
		} else {
			f.CompactAt(2*compactAbove, keepEvents)
			bus.SetFile(f)
		}
	}
	bus.Preload(events)
	switch {
	case aside != "":
		bus.Emit(journal.Event{Kind: journal.Torn, Message: fmt.Sprintf("journal %s was damaged (%d unreadable lines, not a crash's torn last write): kept aside as %s; %d events read from it, and leftovers are also found by their cgroups and markers",
			path, damage.Lines, aside, len(events)), Fields: map[string]string{"kept": aside, "lines": fmt.Sprint(damage.Lines)}})
	case damage.Lines > 0:
		bus.Emit(journal.Event{Kind: journal.Torn, Message: fmt.Sprintf("journal %s: its last line was cut short by a crash mid-write and was skipped", path)})
	}
	if derr != nil {
		bus.Emit(journal.Event{Kind: journal.Daemon, Message: "finding leftovers without the journal was incomplete: " + derr.Error()})
	}
	if len(gone) > 0 {
		bus.Emit(journal.Event{Kind: journal.Reaped, Message: fmt.Sprintf("%d journal records of earlier runs had nothing left (no group, no marked process, leader gone): dropped from the journal", len(gone)),
			Fields: map[string]string{"gone": fmt.Sprint(len(gone))}})
	}
	var alive []*journal.Instance
	for _, in := range live {
		if !gone[in.ID] {
			alive = append(alive, in)
		}
	}
	left, pending = map[string]string{}, map[string][]proctree.Process{}
	if len(alive) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		n, reaped := 0, 0
		// Killed processes a slow parent has not reaped yet are waited for
		// by their service's start, not by the daemon's: it answers at once.
		for _, r := range reclaim.Reap(ctx, alive, reclaim.Options{Bus: bus, DeferZombies: true}) {
			pending[r.Service] = append(pending[r.Service], r.Pending...)
			switch {
			case r.Error != "":
				left[r.Service] = fmt.Sprintf("instance %s of an earlier run could not be stopped: %s", r.Instance, r.Error)
			case !r.Gone:
				reaped++
				n += r.Killed
			}
		}
		msg := fmt.Sprintf("reaped %d leftover instances of an earlier run (%d processes; %d found without a journal record) in %v",
			reaped, n, unjournaled, time.Since(began).Round(time.Millisecond))
		for svc, why := range left {
			msg += fmt.Sprintf("; %s will not start: %s", svc, why)
		}
		bus.Emit(journal.Event{Kind: journal.Daemon, Message: msg})
	}
	if rerr != nil {
		return left, pending, fmt.Errorf("daemon: the journal cannot be written, so nothing could start safely (leftovers found by their cgroups and markers were reaped): %w", rerr)
	}
	return left, pending, nil
}

// Journal sizes: compact at start past compactAbove bytes, keeping the
// spawn records of live instances and the last keepEvents events.
const (
	compactAbove = 4 << 20
	keepEvents   = 5000
)

// DefaultStateDir is .corral beside the configuration file.
func DefaultStateDir(configPath string) string {
	abs, err := filepath.Abs(configPath)
	if err != nil {
		abs = configPath
	}
	return filepath.Join(filepath.Dir(abs), ".corral")
}

// ReapLocal reclaims leftovers when no daemon runs: it takes the state
// directory's lock (so no daemon starts meanwhile), reads the journal and
// reaps (or, with dryRun, lists) every instance it says may be alive.
func ReapLocal(ctx context.Context, stateDir string, dryRun bool) ([]reclaim.Report, error) {
	lock, err := takeLock(stateDir)
	if errors.Is(err, ErrRunning) {
		return nil, fmt.Errorf("%w for %s but it does not answer; reap through it once it does", ErrRunning, stateDir)
	}
	if err != nil {
		return nil, err
	}
	defer lock.Unlock()
	path := filepath.Join(stateDir, journal.FileName)
	events, _, err := journal.ReadFile(path)
	if err != nil {
		// Leftovers are still found by their cgroups and markers.
		events = nil
	}
	bus := journal.NewBus(100, nil)
	var f *journal.File
	if !dryRun && err == nil {
		if f, err = journal.OpenFile(path); err != nil {
			return nil, err
		}
		defer f.Close()
		bus.SetFile(f)
	}
	found, _ := reclaim.Discover(statedir.Key(stateDir))
	live, _ := reclaim.Merge(journal.Live(events), found)
	rs := reclaim.Reap(ctx, live, reclaim.Options{DryRun: dryRun, Bus: bus})
	if f != nil {
		forget := map[string]bool{}
		for _, r := range rs {
			if r.Gone {
				forget[r.Instance] = true
			}
		}
		f.Forget(forget, keepEvents)
	}
	return rs, nil
}

// takeLock checks the state directory can be trusted (creating it if
// missing) and takes its daemon lock, writing this process's pid in it.
// The lock file is opened without following a symlink: one planted there
// would make a root daemon overwrite the file it points to.
func takeLock(stateDir string) (*flock.Flock, error) {
	if err := statedir.Prepare(stateDir); err != nil {
		return nil, fmt.Errorf("daemon: %w", err)
	}
	lockPath := filepath.Join(stateDir, LockName)
	if err := statedir.Refuse(lockPath); err != nil {
		return nil, fmt.Errorf("daemon: %w", err)
	}
	lock := flock.New(lockPath, flock.SetFlag(os.O_CREATE|os.O_RDWR|statedir.NoFollow), flock.SetPermissions(0o600))
	ok, err := lock.TryLock()
	if err != nil {
		return nil, fmt.Errorf("daemon: lock %s: %w", lockPath, err)
	}
	if !ok {
		pid, _ := readLockPID(stateDir)
		return nil, fmt.Errorf("%w for %s (pid %s); use corral status, or corral shutdown to stop it", ErrRunning, stateDir, pid)
	}
	if f, err := statedir.OpenFile(stateDir, LockName, os.O_WRONLY|os.O_TRUNC, 0o600); err == nil {
		f.WriteString(strconv.Itoa(os.Getpid()) + "\n")
		f.Close()
	}
	return lock, nil
}

// readLockPID reads the pid a daemon wrote in its lock file.
func readLockPID(stateDir string) (string, error) {
	f, err := statedir.OpenFile(stateDir, LockName, os.O_RDONLY, 0)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 64))
	return strings.TrimSpace(string(b)), err
}

// viewsOf adapts a function to metrics.Source.
type viewsOf func(members bool) []supervisor.View

func (f viewsOf) List(members bool) []supervisor.View { return f(members) }
