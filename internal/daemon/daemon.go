package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gofrs/flock"

	"github.com/corral-sh/corral/internal/api"
	"github.com/corral-sh/corral/internal/config"
	"github.com/corral-sh/corral/internal/ipc"
	"github.com/corral-sh/corral/internal/journal"
	"github.com/corral-sh/corral/internal/procinfo"
	"github.com/corral-sh/corral/internal/reaper"
	"github.com/corral-sh/corral/internal/reclaim"
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
}

// LockName is the lock file in the state directory.
const LockName = "daemon.lock"

// ErrRunning is returned when another daemon holds the state directory.
var ErrRunning = errors.New("daemon: another corral daemon is running")

// Info is what GET /v1/daemon answers.
type Info struct {
	PID       int       `json:"pid"`
	Version   string    `json:"version"`
	Config    string    `json:"config"`
	StateDir  string    `json:"state_dir"`
	Started   time.Time `json:"started"`
	Mechanism string    `json:"mechanism"`
}

type daemon struct {
	o       Options
	sup     *supervisor.Supervisor
	info    Info
	stopMu  sync.Mutex // serialises shutdown; guards result
	result  *supervisor.ShutdownResult
	stopped chan struct{} // closed once the verified shutdown is done
	reloads sync.Mutex    // one reload at a time

	journalPath string
}

func (d *daemon) Supervisor() *supervisor.Supervisor { return d.sup }
func (d *daemon) Info() any                          { return d.info }

func (d *daemon) Reload(ctx context.Context) (supervisor.ReloadResult, error) {
	d.reloads.Lock()
	defer d.reloads.Unlock()
	cfg, err := config.Load(d.o.ConfigPath)
	if err != nil {
		d.sup.Bus().Emit(journal.Event{Kind: journal.Daemon, Message: "reload rejected, keeping the running configuration: " + err.Error()})
		return supervisor.ReloadResult{}, fmt.Errorf("reload rejected, nothing changed: %w", err)
	}
	return d.sup.Reload(ctx, cfg)
}

// Reap reclaims instances the journal says may be alive that this daemon
// does not run: leftovers of an earlier run.
func (d *daemon) Reap(ctx context.Context, dryRun bool) ([]reclaim.Report, error) {
	events, _, err := journal.ReadFile(d.journalPath)
	if err != nil {
		return nil, err
	}
	mine := d.sup.LiveInstances()
	var live []*journal.Instance
	for _, in := range journal.Live(events) {
		if !mine[in.ID] {
			live = append(live, in)
		}
	}
	return reclaim.Reap(ctx, live, dryRun, d.sup.Bus()), nil
}

// reclaimHolder reaps the instance a port holder belongs to when that is a
// leftover of an earlier run: its marker names an instance of our journal
// that no service of this daemon runs. A process without our marker is
// never touched.
func (d *daemon) reclaimHolder(pid int) bool {
	id := procinfo.Marker(pid)
	if id == "" || d.sup.LiveInstances()[id] {
		return false
	}
	events, _, err := journal.ReadFile(d.journalPath)
	if err != nil {
		return false
	}
	in := journal.Fold(events)[id]
	if in == nil {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rs := reclaim.Reap(ctx, []*journal.Instance{in}, false, d.sup.Bus())
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
	if err := os.MkdirAll(o.StateDir, 0o700); err != nil {
		return zero, fmt.Errorf("daemon: state directory: %w", err)
	}
	lockPath := filepath.Join(o.StateDir, LockName)
	lock := flock.New(lockPath)
	ok, err := lock.TryLock()
	if err != nil {
		return zero, fmt.Errorf("daemon: lock %s: %w", lockPath, err)
	}
	if !ok {
		pid, _ := os.ReadFile(lockPath)
		return zero, fmt.Errorf("%w for %s (pid %s); use corral status, or corral shutdown to stop it", ErrRunning, o.StateDir, strings.TrimSpace(string(pid)))
	}
	defer lock.Unlock()
	os.WriteFile(lockPath, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600)

	cfg, err := config.Load(o.ConfigPath)
	if err != nil {
		return zero, err
	}
	containment := o.Containment
	if containment == proctree.Auto && cfg.Containment != "" {
		containment, _ = proctree.ParseContainment(cfg.Containment)
	}
	if os.Getpid() == 1 {
		// A container's init: every orphan of the namespace is ours to reap.
		reaper.EnableInitMode()
		o.Log.Info("running as PID 1: reaping every orphan; SIGTERM runs the verified shutdown")
	}
	bus := journal.NewBus(2000, nil)
	jpath := filepath.Join(o.StateDir, journal.FileName)
	if err := recoverLeftovers(jpath, bus, o.Log); err != nil {
		return zero, err
	}
	d := &daemon{o: o, stopped: make(chan struct{}), journalPath: jpath, info: Info{
		PID: os.Getpid(), Version: o.Version, Config: o.ConfigPath, StateDir: o.StateDir,
		Started: time.Now(), Mechanism: mechanismName(containment),
	}}
	sup, err := supervisor.New(cfg, supervisor.Options{StateDir: o.StateDir, Containment: containment, Log: o.Log, Bus: bus,
		Reclaim: d.reclaimHolder, KernelLimits: os.Getenv("CORRAL_KERNEL_LIMITS") != "off"})
	if err != nil {
		return zero, err
	}
	d.sup = sup
	ln, err := ipc.Listen(o.StateDir)
	if err != nil {
		return zero, err
	}
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
	srv := &http.Server{Handler: api.Handler(d, o.Log), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	defer os.Remove(ipc.Path(o.StateDir))
	bus.Emit(journal.Event{Kind: journal.Daemon, Message: fmt.Sprintf("daemon %d started: %s, %d services, state %s", os.Getpid(), o.ConfigPath, len(cfg.Services), o.StateDir)})
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

func mechanismName(c proctree.Containment) string {
	if c == proctree.Auto {
		return "auto"
	}
	return string(c)
}

// recoverLeftovers opens the journal for bus and, before anything starts,
// reaps every instance an earlier run left alive; then compacts the file
// when it has grown.
func recoverLeftovers(path string, bus *journal.Bus, log *slog.Logger) error {
	events, torn, err := journal.ReadFile(path)
	if err != nil {
		return err
	}
	if journal.Size(path) > compactAbove {
		if err := journal.Compact(path, keepEvents); err != nil {
			log.Warn("journal compaction", "err", err)
		} else if events, torn, err = journal.ReadFile(path); err != nil {
			return err
		}
	}
	f, err := journal.OpenFile(path)
	if err != nil {
		return fmt.Errorf("daemon: the journal cannot be written, so nothing could start safely: %w", err)
	}
	f.CompactAt(2*compactAbove, keepEvents)
	bus.SetFile(f)
	bus.Preload(events)
	if torn > 0 {
		bus.Emit(journal.Event{Kind: journal.Torn, Message: fmt.Sprintf("journal %s: %d damaged entries skipped (a crash mid-write)", path, torn)})
	}
	live := journal.Live(events)
	if len(live) == 0 {
		return nil
	}
	began := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	reports := reclaim.Reap(ctx, live, false, bus)
	n := 0
	for _, r := range reports {
		n += r.Killed
	}
	bus.Emit(journal.Event{Kind: journal.Daemon, Message: fmt.Sprintf("reaped %d leftover instances of an earlier run (%d processes) in %v",
		len(reports), n, time.Since(began).Round(time.Millisecond))})
	return nil
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
	lockPath := filepath.Join(stateDir, LockName)
	lock := flock.New(lockPath)
	ok, err := lock.TryLock()
	if err != nil {
		return nil, fmt.Errorf("daemon: lock %s: %w", lockPath, err)
	}
	if !ok {
		return nil, fmt.Errorf("%w for %s but it does not answer; reap through it once it does", ErrRunning, stateDir)
	}
	defer lock.Unlock()
	path := filepath.Join(stateDir, journal.FileName)
	events, _, err := journal.ReadFile(path)
	if err != nil {
		return nil, err
	}
	bus := journal.NewBus(100, nil)
	if !dryRun {
		f, err := journal.OpenFile(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		bus.SetFile(f)
	}
	return reclaim.Reap(ctx, journal.Live(events), dryRun, bus), nil
}
