package proctree

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/corral-sh/corral/internal/procinfo"
	"github.com/corral-sh/corral/internal/reaper"
)

// Mechanism names the containment in use for a tree.
type Mechanism string

const (
	// Cgroup: a leaf cgroup v2 group per tree (Linux, tier A).
	Cgroup Mechanism = "cgroup-v2"
	// ProcessGroup: process group + descendants + instance marker, with
	// the caller as child subreaper on Linux (tier B, and macOS).
	ProcessGroup Mechanism = "pgroup"
	// JobObject: a Windows Job Object per tree.
	JobObject Mechanism = "job-object"
)

// Containment selects a mechanism when starting a tree.
type Containment string

const (
	// Auto picks the strongest mechanism that works here.
	Auto Containment = ""
	// ForceCgroup requires cgroup v2 and fails when it is not usable.
	ForceCgroup Containment = "cgroup"
	// ForcePgroup uses the process-group tier even where cgroups work.
	ForcePgroup Containment = "pgroup"
)

// ParseContainment parses "", "auto", "cgroup" or "pgroup".
func ParseContainment(s string) (Containment, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "auto":
		return Auto, nil
	case "cgroup", "cgroup2", "cgroup-v2":
		return ForceCgroup, nil
	case "pgroup", "process-group":
		return ForcePgroup, nil
	}
	return Auto, fmt.Errorf("proctree: unknown containment %q (want auto, cgroup or pgroup)", s)
}

// Options configure Start. The zero value is ready to use.
type Options struct {
	// Containment forces a mechanism; Auto chooses.
	Containment Containment
	// Service is written into every member's CORRAL_SERVICE.
	Service string
	// Instance is the tree's unique id, written into every member's
	// CORRAL_INSTANCE. Empty: a random id.
	Instance string
	// CgroupParent is the absolute directory (inside the cgroup2 mount)
	// under which the tree's leaf group is created. Empty: a "corral" group
	// beside this process's own cgroup.
	CgroupParent string
	// Logger receives debug records about containment decisions. Nil: none.
	Logger *slog.Logger
	// NoShim starts the leader as this process's own child in the
	// process-group tier on Linux, without the per-tree subreaper (the
	// shim) that keeps setsid'd daemons which rewrite their environment in
	// the tree. Only for negative controls and measurements: without the
	// shim such a daemon escapes.
	NoShim bool
	// Gate, if set, is called after the leader exists but before it runs a
	// single instruction of its program (Linux: the child stops right after
	// execve under PTRACE_TRACEME and is released after Gate returns). If
	// Gate fails, the leader is killed unrun and Start returns the error.
	// corral journals every spawn here. Elsewhere Gate runs right after the
	// start, which is weaker, and says so in docs/architecture.md.
	Gate func(Gated) error
}

// LeafName is the name of a tree's own cgroup: the service and the instance
// (SERVICE@INSTANCE), so a daemon that lost its journal can still say whose
// group it found. A service name that could not be a directory's name (or
// that is empty) gives the instance id alone.
func LeafName(service, instance string) string {
	if service == "" || strings.ContainsAny(service, "/@\n\x00") || service[0] == '.' || len(service) > 128 {
		return instance
	}
	return service + "@" + instance
}

// Gated describes a leader held at the gate.
type Gated struct {
	Instance   string
	PID        int
	StartTicks uint64
	Boot       string
	Mechanism  Mechanism
	// Container is the cgroup directory for the cgroup tier, "" otherwise.
	Container string
}

// Process describes one live member of a tree.
type Process struct {
	PID     int       `json:"pid"`
	PPID    int       `json:"ppid"`
	PGID    int       `json:"pgid"`
	Start   time.Time `json:"start"`
	Cmdline []string  `json:"cmdline"`
	RSS     int64     `json:"rss"`
	State   string    `json:"state"`
	// StartTicks is the raw start time that, with PID and the boot id,
	// identifies the process across PID reuse.
	StartTicks uint64 `json:"start_ticks"`
	// CPUSeconds is the processor time it used, user and system, with the
	// children it waited for (Linux and Windows; 0 elsewhere).
	CPUSeconds float64 `json:"cpu_seconds"`
}

// StopReport says what Stop did.
type StopReport struct {
	Signal    string        `json:"signal"`
	Signalled int           `json:"signalled"`        // members that received the stop signal
	Exited    int           `json:"exited_on_signal"` // of those, how many exited within the grace period
	Killed    int           `json:"killed"`           // members still alive after grace and killed
	Duration  time.Duration `json:"duration"`         // in JSON: nanoseconds, and duration_ms beside it
	// Survivors lists members still alive when Stop gave up. A successful
	// Stop always returns an empty list.
	Survivors []Process `json:"survivors"`
	// Unverified, when not empty, says why this tier cannot prove the tree
	// empty although no member is left to find (Tree.Unprovable): a stop
	// that carries it must not be reported as verified.
	Unverified string `json:"unverified,omitempty"`
}

// Why a tree's emptiness may not be provable (StopReport.Unverified).
const (
	UnprovableNoSubreaper = "no subreaper here: a descendant that setsids and rewrites its environment (setproctitle: nginx, redis) is re-parented to init, out of every scan's reach"
	UnprovableNoShim      = "started without a shim: a descendant that setsids and rewrites its environment is re-parented to this process with no trace of its tree; only a scan of its children for strays finds it"
	UnprovableShimDied    = "the tree's shim died before the tree was empty: a descendant that setsids and rewrites its environment afterwards is re-parented to this process with no trace of its tree; only a scan of its children for strays finds it"
	UnprovableAdopted     = "adopted from an earlier process whose shim was gone: a descendant that setsid'd and rewrote its environment went to init when that process died, out of every scan's reach"
)

// Unprovable says why an empty scan of this tree would not prove it empty
// in its tier, or "" when it does (cgroup v2, a job object, the process-group
// tier under a live shim). See the Unprovable constants.
func (t *Tree) Unprovable() string {
	if u, ok := t.b.(interface{ unprovable() string }); ok {
		return u.unprovable()
	}
	return ""
}

// MarshalJSON adds duration_ms beside duration (nanoseconds, as Go counts
// a Duration): readers in other languages need not know Go's unit.
func (r StopReport) MarshalJSON() ([]byte, error) {
	type plain StopReport // without this method
	return json.Marshal(struct {
		plain
		DurationMS int64 `json:"duration_ms"`
	}{plain(r), r.Duration.Milliseconds()})
}

// ErrNotEmpty is returned (wrapped) when Stop could not verify the tree empty.
var ErrNotEmpty = errors.New("proctree: tree not empty")

// member is a live process as a backend sees it.
type member struct {
	stat procinfo.Stat
}

// backend is the per-mechanism part of a tree. Every method may be called
// from any goroutine.
type backend interface {
	mechanism() Mechanism
	// prepare adjusts cmd before it starts (SysProcAttr, container fd).
	prepare(cmd *exec.Cmd) error
	// started is told the leader's pid once it runs; abort is called instead
	// when Start failed.
	started(pid int)
	abort()
	// members lists the live (non-zombie) members.
	members() ([]member, error)
	// pids lists the live members' pids as cheaply as the mechanism allows
	// (in the cgroup tier one read of cgroup.procs).
	pids() ([]int, error)
	// signal sends sig to every live member and returns the ones it reached.
	signal(sig syscall.Signal) ([]member, error)
	// delivered names what the last signal call actually delivered where
	// that differs from the signal asked for (Windows: the console event,
	// CTRL_C where the console lacks CTRL_BREAK); "" otherwise.
	delivered() string
	// kill ends every member and returns the ones alive when it acted;
	// it returns when none is left alive or ctx ends.
	kill(ctx context.Context) ([]member, error)
	freeze(ctx context.Context) error
	thaw() error
	// waitEmpty returns nil once no live member is left.
	waitEmpty(ctx context.Context) error
	// release frees the container after the tree is empty.
	release() error

	// admit puts the started, not yet running leader into the container
	// (Windows: the suspended leader into its job). Where prepare already
	// placed it there (a cgroup fd, a process group) it does nothing.
	admit(pid int) error
	// container names the container for Gated.Container: the cgroup
	// directory in the cgroup tier, "" where there is none to name.
	container() string
	// shimHost is the backend a per-tree shim (shim_linux.go) works with,
	// or nil where the mechanism takes no shim (every tier but Linux's
	// process groups). Its type is per platform (shim_*.go).
	shimHost() shimHost
}

// Tree is a started, contained process tree.
//
// The Tree owns its command's wait: it calls cmd.Wait itself (or, when a
// shim holds the tree, collects the status the shim relays), so the caller
// must not call cmd.Wait, cmd.Process.Wait or wait for the leader's pid in
// any other way; doing so races the Tree for the leader's status and can
// leave Exited and Done never closing. Instead wait on Exited (the leader
// ended; ExitState gives its status) or Done (the whole tree is gone and
// its container released), and end the tree with Stop or Kill rather than
// cmd.Process.Kill, which reaches the leader alone.
type Tree struct {
	id      string
	service string
	cmd     *exec.Cmd
	b       backend
	log     *slog.Logger

	exited chan struct{} // closed when the leader has been waited for
	done   chan struct{} // closed when the tree is empty and released

	// waitErr and state are written once before exited is closed.
	waitErr error
	state   *ExitStatus

	// leader is the program's pid: cmd's own in most tiers, the shim's
	// child when a shim holds the tree (then shim is set).
	leader  int
	shim    *shimConn
	shimCmd *exec.Cmd

	// stopMu serialises Stop and Kill so that two callers do not race
	// their signal phases; it guards nothing else.
	stopMu sync.Mutex

	// copiers finish when the output pipes reach EOF; they are not part of
	// the tree's lifetime.
	copiers sync.WaitGroup

	// cancelWait ends an adopted tree's wait for emptiness (Release).
	cancelWait context.CancelFunc
}

func newID() string {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("proctree: no randomness: " + err.Error())
	}
	return hex.EncodeToString(b[:])
}

// Start starts cmd as the leader of a new contained tree. cmd must not have
// been started. Its environment gains CORRAL_INSTANCE and CORRAL_SERVICE;
// non-file Stdin/Stdout/Stderr are served through pipes owned by the Tree.
// From here on the Tree owns cmd.Wait (see Tree): do not call it; wait on
// the Tree's Exited or Done and read ExitState. cmd.Process may be that of
// a shim rather than of the program (Tree.PID is the program's).
func Start(cmd *exec.Cmd, opts Options) (*Tree, error) {
	if cmd.Process != nil {
		return nil, errors.New("proctree: command already started")
	}
	// From the fork until the leader (or its shim) is Protected, a scan for
	// strays must not take it for one.
	defer reaper.Spawning()()
	t := &Tree{
		id:      opts.Instance,
		service: opts.Service,
		cmd:     cmd,
		log:     opts.Logger,
		exited:  make(chan struct{}),
		done:    make(chan struct{}),
	}
	if t.id == "" {
		t.id = newID()
	}
	if t.log == nil {
		t.log = slog.New(slog.DiscardHandler)
	}
	b, err := newBackend(t.id, opts.Containment, opts)
	if err != nil {
		return nil, err
	}
	t.b = b
	cmd.Env = withMarker(cmd.Env, t.id, opts.Service)
	if reaper.InitMode() && opts.Gate == nil {
		// As init, a leader that exits before it is protected would be
		// reaped under exec.Cmd.Wait; the gate protects it before it runs.
		opts.Gate = func(Gated) error { return nil }
	}
	closeAfter, err := t.filePipes()
	if err != nil {
		b.abort()
		return nil, err
	}
	if err := b.prepare(cmd); err != nil {
		closeAll(closeAfter)
		b.abort()
		return nil, err
	}
	if useShim(b, opts) {
		err := t.startShim(opts.Gate)
		closeAll(closeAfter)
		if err != nil {
			b.abort()
			return nil, err
		}
		t.log.Debug("proctree: started under a shim", "instance", t.id, "pid", t.leader, "shim", cmd.Process.Pid)
		go t.waitShim()
		return t, nil
	}
	if err := startGated(cmd, b, t.id, opts.Gate); err != nil {
		closeAll(closeAfter)
		if cmd.Process == nil {
			b.abort()
			return nil, fmt.Errorf("proctree: start %s: %w", cmd.Path, err)
		}
		// Started but refused at the gate: the leader was killed unrun.
		b.started(cmd.Process.Pid)
		go t.wait()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		t.Stop(ctx, syscall.SIGKILL, 0)
		cancel()
		return nil, err
	}
	// The child has its own copies now; closing ours lets readers see EOF
	// when the last member holding the pipe exits.
	closeAll(closeAfter)
	t.leader = cmd.Process.Pid
	reaper.Protect(cmd.Process.Pid)
	b.started(cmd.Process.Pid)
	t.log.Debug("proctree: started", "instance", t.id, "pid", cmd.Process.Pid, "mechanism", b.mechanism())
	go t.wait()
	return t, nil
}

func withMarker(env []string, id, service string) []string {
	if env == nil {
		env = os.Environ()
	}
	out := make([]string, 0, len(env)+2)
	for _, kv := range env {
		// proctree's own control variables never reach a program: one that
		// links proctree (corral itself) would otherwise turn into a shim
		// or a trampoline on whatever descriptor the number names.
		if strings.HasPrefix(kv, procinfo.MarkerVar+"=") || strings.HasPrefix(kv, procinfo.ServiceVar+"=") ||
			strings.HasPrefix(kv, "CORRAL_PROCTREE_SHIM=") || strings.HasPrefix(kv, "CORRAL_PROCTREE_TRAMPOLINE=") {
			continue
		}
		out = append(out, kv)
	}
	out = append(out, procinfo.MarkerVar+"="+id)
	if service != "" {
		out = append(out, procinfo.ServiceVar+"="+service)
	}
	return out
}

func closeAll(fs []*os.File) {
	for _, f := range fs {
		f.Close()
	}
}

// filePipes replaces non-file stdio with os.Pipe ends and starts copiers.
// exec.Cmd would otherwise wait in Wait for its own copy goroutines, which
// end only when every descendant holding the pipe has exited.
func (t *Tree) filePipes() (closeAfterStart []*os.File, err error) {
	cmd := t.cmd
	if r := cmd.Stdin; r != nil {
		if _, ok := r.(*os.File); !ok {
			pr, pw, err := os.Pipe()
			if err != nil {
				return nil, fmt.Errorf("proctree: stdin pipe: %w", err)
			}
			cmd.Stdin = pr
			closeAfterStart = append(closeAfterStart, pr)
			go func() {
				io.Copy(pw, r)
				pw.Close()
			}()
		}
	}
	var shared *os.File
	wrapOut := func(w io.Writer) (io.Writer, error) {
		if w == nil {
			return nil, nil
		}
		if f, ok := w.(*os.File); ok {
			return f, nil
		}
		if cmd.Stdout == cmd.Stderr && shared != nil {
			return shared, nil
		}
		pr, pw, err := os.Pipe()
		if err != nil {
			return nil, fmt.Errorf("proctree: output pipe: %w", err)
		}
		closeAfterStart = append(closeAfterStart, pw)
		t.copiers.Add(1)
		go func() {
			defer t.copiers.Done()
			copyPipe(w, pr)
			pr.Close()
		}()
		shared = pw
		return pw, nil
	}
	sameWriter := cmd.Stdout != nil && cmd.Stdout == cmd.Stderr
	out, err := wrapOut(cmd.Stdout)
	if err != nil {
		closeAll(closeAfterStart)
		return nil, err
	}
	if !sameWriter {
		shared = nil
	}
	errw, err := wrapOut(cmd.Stderr)
	if err != nil {
		closeAll(closeAfterStart)
		return nil, err
	}
	if out != nil {
		cmd.Stdout = out
	}
	if errw != nil {
		cmd.Stderr = errw
	}
	return closeAfterStart, nil
}

// wait collects the leader's status, then waits for the container to empty
// and releases it.
func (t *Tree) wait() {
	awaitExit(t.cmd.Process.Pid)
	err := t.cmd.Wait()
	reaper.Unprotect(t.cmd.Process.Pid)
	t.waitErr = err
	if t.cmd.ProcessState != nil {
		t.state = &ExitStatus{ps: t.cmd.ProcessState}
	}
	close(t.exited)
	if err := t.b.waitEmpty(context.Background()); err != nil {
		t.log.Warn("proctree: waiting for empty tree", "instance", t.id, "err", err)
	}
	if err := t.b.release(); err != nil {
		t.log.Warn("proctree: release container", "instance", t.id, "err", err)
	}
	close(t.done)
}

// ID returns the tree's instance id (the value of CORRAL_INSTANCE).
func (t *Tree) ID() string { return t.id }

// Mechanism names the containment in use.
func (t *Tree) Mechanism() Mechanism { return t.b.mechanism() }

// PID returns the leader's process id (the program's, never a shim's); 0
// for an adopted tree.
func (t *Tree) PID() int { return t.leader }

// Exited is closed when the leader has exited and its status is known.
func (t *Tree) Exited() <-chan struct{} { return t.exited }

// Done is closed when the leader has exited, no member is left, and the
// container has been released.
func (t *Tree) Done() <-chan struct{} { return t.done }

// ExitStatus is how a tree's leader ended: its own wait status, also when a
// shim collected it and relayed it.
type ExitStatus struct {
	ps       *os.ProcessState // the leader was our own child
	code     int              // relayed: exit code, -1 if signalled
	signaled bool
	desc     string
}

// ExitCode is the leader's exit code, or -1 if a signal ended it.
func (e *ExitStatus) ExitCode() int {
	if e.ps != nil {
		return e.ps.ExitCode()
	}
	return e.code
}

// Success reports whether the leader exited with status 0.
func (e *ExitStatus) Success() bool { return e.ExitCode() == 0 }

// Signaled reports whether a signal ended the leader.
func (e *ExitStatus) Signaled() bool {
	if e.ps != nil {
		ws, ok := e.ps.Sys().(interface{ Signaled() bool })
		return ok && ws.Signaled()
	}
	return e.signaled
}

// String reads as os.ProcessState's: "exit status 3", "signal: killed".
func (e *ExitStatus) String() string {
	if e == nil {
		return "<nil>"
	}
	if e.ps != nil {
		return e.ps.String()
	}
	return e.desc
}

// ExitState returns the leader's exit state and Wait's error once Exited is
// closed, and (nil, nil) before. The state is nil when the leader's status
// could not be known (its shim was killed before relaying it).
func (t *Tree) ExitState() (*ExitStatus, error) {
	select {
	case <-t.exited:
		return t.state, t.waitErr
	default:
		return nil, nil
	}
}

// OutputDone waits until the copiers of non-file output have seen EOF, which
// happens only when every process holding the pipe has exited.
func (t *Tree) OutputDone() { t.copiers.Wait() }

// Members lists every live member with its command line and resident memory.
func (t *Tree) Members() ([]Process, error) {
	ms, err := t.b.members()
	if err != nil {
		return nil, err
	}
	out := make([]Process, 0, len(ms))
	for _, m := range ms {
		out = append(out, describe(m.stat))
	}
	return out, nil
}

// PIDs lists the live members' pids as cheaply as the mechanism allows: in
// the cgroup tier one read of cgroup.procs.
func (t *Tree) PIDs() ([]int, error) {
	return t.b.pids()
}

// pidsOf is pids for a backend that knows no cheaper way than its members.
func pidsOf(ms []member, err error) ([]int, error) {
	if err != nil {
		return nil, err
	}
	out := make([]int, len(ms))
	for i, m := range ms {
		out[i] = m.stat.PID
	}
	return out, nil
}

// Stats lists every live member with pid, parent, start time and resident
// memory but without reading command lines: the cheap form the watchdog
// polls every interval.
func (t *Tree) Stats() ([]Process, error) {
	ms, err := t.b.members()
	if err != nil {
		return nil, err
	}
	out := make([]Process, len(ms))
	for i, m := range ms {
		out[i] = Process{PID: m.stat.PID, PPID: m.stat.PPID, PGID: m.stat.PGID, StartTicks: m.stat.StartTicks, RSS: m.stat.RSS, State: string(m.stat.State), CPUSeconds: m.stat.CPU.Seconds()}
	}
	return out, nil
}

func describe(s procinfo.Stat) Process {
	argv, _ := procinfo.Cmdline(s.PID)
	if len(argv) == 0 {
		argv = []string{"[" + s.Comm + "]"}
	}
	return Process{
		PID:        s.PID,
		PPID:       s.PPID,
		PGID:       s.PGID,
		Start:      procinfo.StartTime(s.StartTicks),
		StartTicks: s.StartTicks,
		Cmdline:    argv,
		RSS:        s.RSS,
		State:      string(s.State),
		CPUSeconds: s.CPU.Seconds(),
	}
}

// Signal sends sig to every live member and returns how many it reached.
// sig is a syscall.Signal (os.Interrupt and os.Kill are); on Windows
// os.Kill terminates the tree's job, os.Interrupt becomes CTRL_C and any
// other signal CTRL_BREAK on the tree's console.
func (t *Tree) Signal(sig os.Signal) (int, error) {
	s, err := sysSignal(sig)
	if err != nil {
		return 0, err
	}
	ms, err := t.b.signal(s)
	return len(ms), err
}

// sysSignal is the signal number a backend sends for sig.
func sysSignal(sig os.Signal) (syscall.Signal, error) {
	s, ok := sig.(syscall.Signal)
	if !ok {
		return 0, fmt.Errorf("proctree: signal %v (%T) is no syscall.Signal", sig, sig)
	}
	return s, nil
}

// Kill ends every member at once and returns when the tree is empty or ctx
// ends.
func (t *Tree) Kill(ctx context.Context) error {
	t.stopMu.Lock()
	defer t.stopMu.Unlock()
	if _, err := t.b.kill(ctx); err != nil {
		return err
	}
	return t.b.waitEmpty(ctx)
}

// Freeze stops every member from running (cgroup.freeze or SIGSTOP) so that
// the tree cannot grow while it is inspected or acted on.
func (t *Tree) Freeze(ctx context.Context) error { return t.b.freeze(ctx) }

// Thaw undoes Freeze.
func (t *Tree) Thaw() error { return t.b.thaw() }

// Stop ends the tree: sig to every member, up to grace for them to exit, then
// a kill of whatever is left, and a wait until the container is verified
// empty and the leader's status collected. It returns an error wrapping
// ErrNotEmpty, with the survivors in the report, if ctx ends first. sig is
// as for Signal. Stop may be called again, and concurrently: a stopped tree
// is stopped at once.
func (t *Tree) Stop(ctx context.Context, sig os.Signal, grace time.Duration) (StopReport, error) {
	ssig, err := sysSignal(sig)
	if err != nil {
		return StopReport{}, err
	}
	t.stopMu.Lock()
	defer t.stopMu.Unlock()
	began := time.Now()
	rep := StopReport{Signal: signalName(ssig)}
	finish := func(err error) (StopReport, error) {
		rep.Duration = time.Since(began)
		rep.Unverified = t.Unprovable()
		if err != nil {
			if ms, merr := t.Members(); merr == nil {
				rep.Survivors = ms
			}
			if len(rep.Survivors) > 0 {
				return rep, fmt.Errorf("%w: %d members of %s survive: %v", ErrNotEmpty, len(rep.Survivors), t.id, err)
			}
		}
		return rep, err
	}

	// Without a grace period a stop signal gives no member time to act on
	// it; go straight to the kill.
	var signalled []member
	if grace > 0 {
		var err error
		if signalled, err = t.b.signal(ssig); err != nil {
			return finish(err)
		}
		rep.Signalled = len(signalled)
		if d := t.b.delivered(); d != "" {
			rep.Signal = d
		}
	}
	emptied := false
	if len(signalled) > 0 {
		gctx, cancel := context.WithTimeout(ctx, grace)
		emptied = t.b.waitEmpty(gctx) == nil
		cancel()
	}
	if !emptied {
		killed, err := t.b.kill(ctx)
		if err != nil {
			return finish(err)
		}
		rep.Killed = len(killed)
		left := map[procinfo.Identity]bool{}
		for _, m := range killed {
			left[m.stat.Identity()] = true
		}
		for _, m := range signalled {
			if !left[m.stat.Identity()] {
				rep.Exited++
			}
		}
		if err := t.b.waitEmpty(ctx); err != nil {
			return finish(err)
		}
	} else {
		rep.Exited = len(signalled)
	}
	select {
	case <-t.done:
	case <-ctx.Done():
		return finish(fmt.Errorf("proctree: tree %s is empty but its leader was not collected: %w", t.id, ctx.Err()))
	}
	return finish(nil)
}
