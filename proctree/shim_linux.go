package proctree

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/corral-sh/corral/internal/procinfo"
	"github.com/corral-sh/corral/internal/reaper"
)

// The shim is the process-group tier's per-tree subreaper (the conmon /
// containerd-shim pattern). Without a writable cgroup the kernel says
// nothing about which tree a process belongs to; ancestry does, until a
// daemon setsids and double-forks: its parent dies and it is re-parented
// to the nearest subreaper. With this process as that subreaper it came to
// us with no trace of its tree, and a daemon that also overwrote its
// environment (setproctitle: nginx, redis, postgres) carried no marker
// either. Under a shim the nearest subreaper is the tree's own shim: every
// descendant of the shim is a member, whatever it does to itself.
//
// The shim is this very binary re-executed (/proc/self/exe) with
// shimEnvVar naming its control socket; an init function of this package
// runs it before main, so every program that links proctree can be its
// own shim. Over the socket the shim receives the leader's spec, starts it
// (stopped at the gate under PTRACE_TRACEME when asked, as the leader is
// without a shim), reports its pid, waits for "go", and then reaps
// everything that lands on it. It relays the leader's wait status when it
// collects it, and exits once it has no child left: the tree is empty.

// shimEnvVar carries the control socket's descriptor number to a shim.
const shimEnvVar = "CORRAL_PROCTREE_SHIM"

func init() {
	if fd := os.Getenv(shimEnvVar); fd != "" {
		os.Exit(runShim(fd))
	}
}

// shimSpec is what the shim starts.
type shimSpec struct {
	Path  string   `json:"path"`
	Args  []string `json:"args"`
	Env   []string `json:"env"`
	Dir   string   `json:"dir,omitempty"`
	Extra int      `json:"extra"` // cmd.ExtraFiles, at 3..3+Extra-1
	Nil   []int    `json:"nil,omitempty"`

	Setsid  bool `json:"setsid,omitempty"`
	Setpgid bool `json:"setpgid,omitempty"`
	Pgid    int  `json:"pgid,omitempty"`
	Setctty bool `json:"setctty,omitempty"`
	Noctty  bool `json:"noctty,omitempty"`
	Ctty    int  `json:"ctty,omitempty"`

	Credential *syscall.Credential `json:"credential,omitempty"`
	Gate       bool                `json:"gate,omitempty"`
	// Trampoline holds the gated leader in a trampoline instead of under
	// ptrace (its program gains privilege at execve); after go the shim
	// says whether its exec succeeded (Released or Err).
	Trampoline bool `json:"trampoline,omitempty"`
}

// shimMsg is one message on the control socket, either way.
type shimMsg struct {
	// shim → tree
	PID    int    `json:"pid,omitempty"`    // the leader, held at the gate when Gated
	Gated  bool   `json:"gated,omitempty"`  // false: ptrace is forbidden, the leader runs
	Err    string `json:"err,omitempty"`    // the start failed
	Errno  int    `json:"errno,omitempty"`  // its errno, if any
	Exit   bool   `json:"exit,omitempty"`   // the leader was collected
	Status uint32 `json:"status,omitempty"` // its wait status
	Empty  bool   `json:"empty,omitempty"`  // no child left; the shim exits
	// a trampolined leader exec'd its program (the answer to Go)
	Released bool `json:"released,omitempty"`
	// tree → shim
	Go bool `json:"go,omitempty"`
}

// shimConn is a tree's side of its shim.
type shimConn struct {
	f   *os.File
	dec *json.Decoder
	enc *json.Encoder
}

func useShim(b backend, opts Options) bool {
	return b.shimHost() != nil && !opts.NoShim
}

func shimSpecOf(cmd *exec.Cmd, gate bool) (shimSpec, error) {
	sp := shimSpec{Path: cmd.Path, Args: cmd.Args, Env: cmd.Env, Dir: cmd.Dir, Extra: len(cmd.ExtraFiles), Gate: gate}
	// The shim has our credentials: it would strip what we would.
	sp.Trampoline = gate && useTrampoline(cmd)
	for i, f := range cmd.ExtraFiles {
		if f == nil {
			sp.Nil = append(sp.Nil, i)
		}
	}
	if a := cmd.SysProcAttr; a != nil {
		if a.Chroot != "" || a.Cloneflags != 0 || a.Unshareflags != 0 || len(a.UidMappings) > 0 || len(a.GidMappings) > 0 ||
			len(a.AmbientCaps) > 0 || a.Pdeathsig != 0 || a.Foreground || a.UseCgroupFD {
			return sp, errors.New("proctree: the process-group tier's shim cannot apply these SysProcAttr fields (set Options.NoShim)")
		}
		sp.Setsid, sp.Setpgid, sp.Pgid = a.Setsid, a.Setpgid, a.Pgid
		sp.Setctty, sp.Noctty, sp.Ctty = a.Setctty, a.Noctty, a.Ctty
		sp.Credential = a.Credential
	}
	return sp, nil
}

// shimEnv is the shim's own environment: the leader's without its instance
// marker (the shim is no member) but with the shim marker, so that a later
// daemon or the keeper that finds it knows whose subtree it holds.
func shimEnv(env []string, id string, fd int) []string {
	out := []string{shimEnvVar + "=" + strconv.Itoa(fd), procinfo.ShimVar + "=" + id, "GORACE=atexit_sleep_ms=0"}
	for _, kv := range env {
		if strings.HasPrefix(kv, procinfo.StateVar+"=") || strings.HasPrefix(kv, procinfo.ServiceVar+"=") || strings.HasPrefix(kv, "PATH=") {
			out = append(out, kv)
		}
	}
	return out
}

// startShim starts t.cmd's program under a shim. On return without error
// t.cmd is the shim (started), t.leader the program, the backend knows
// both, and the gate has passed.
func (t *Tree) startShim(gate func(Gated) error) error {
	cmd := t.cmd
	b := t.b.shimHost()
	if cmd.Err != nil {
		return fmt.Errorf("proctree: start %s: %w", cmd.Path, cmd.Err)
	}
	sp, err := shimSpecOf(cmd, gate != nil)
	if err != nil {
		return err
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("proctree: shim socket: %w", err)
	}
	ours, theirs := os.NewFile(uintptr(fds[0]), "shim"), os.NewFile(uintptr(fds[1]), "shim")
	shim := &exec.Cmd{
		Path:        "/proc/self/exe",
		Args:        []string{"corral-shim", t.id},
		Env:         shimEnv(cmd.Env, t.id, 3+len(cmd.ExtraFiles)),
		Dir:         cmd.Dir, // the leader inherits its working directory, as without a shim
		Stdin:       cmd.Stdin,
		Stdout:      cmd.Stdout,
		Stderr:      cmd.Stderr,
		ExtraFiles:  append(append([]*os.File(nil), cmd.ExtraFiles...), theirs),
		SysProcAttr: &syscall.SysProcAttr{Setpgid: true},
	}
	err = shim.Start()
	theirs.Close()
	if err != nil {
		ours.Close()
		return fmt.Errorf("proctree: start the shim of %s: %w", cmd.Path, err)
	}
	reaper.Protect(shim.Process.Pid)
	var shimStart uint64
	if st, err := procinfo.ReadStat(shim.Process.Pid); err == nil {
		shimStart = st.StartTicks
	}
	b.setShim(shim.Process.Pid, shimStart)
	c := &shimConn{f: ours, dec: json.NewDecoder(ours), enc: json.NewEncoder(ours)}
	fail := func(err error) error {
		ours.Close() // the shim kills a leader it holds and exits
		shim.Wait()
		reaper.Unprotect(shim.Process.Pid)
		if b.unclaim != nil {
			b.unclaim()
		}
		cmd.Process = nil
		return err
	}
	var m shimMsg
	if err := c.enc.Encode(sp); err != nil {
		return fail(fmt.Errorf("proctree: start %s: send to the shim: %w", cmd.Path, err))
	}
	if err := c.dec.Decode(&m); err != nil {
		return fail(fmt.Errorf("proctree: start %s: the shim did not answer: %w", cmd.Path, err))
	}
	if m.Err != "" {
		err := errors.New(m.Err)
		if m.Errno != 0 {
			err = fmt.Errorf("%s: %w", m.Err, syscall.Errno(m.Errno))
		}
		return fail(fmt.Errorf("proctree: start %s: %w", cmd.Path, err))
	}
	// Exposed as exec.Cmd does, so that callers see the started command;
	// Wait and the shim's status belong to the tree.
	cmd.Process = shim.Process
	t.leader = m.PID
	t.shim = c
	t.shimCmd = shim
	b.started(m.PID)
	if gate != nil {
		g := Gated{Instance: t.id, PID: m.PID, StartTicks: b.leaderStart, Boot: procinfo.BootID(), Mechanism: b.mechanism()}
		if err := gate(g); err != nil {
			// Closing the socket makes the shim kill the leader, still
			// stopped at the gate: the program never ran.
			return fail(err)
		}
	}
	if err := c.enc.Encode(shimMsg{Go: true}); err != nil {
		return fail(fmt.Errorf("proctree: release %s from the gate: %w", cmd.Path, err))
	}
	if sp.Trampoline {
		if err := c.dec.Decode(&m); err != nil {
			return fail(fmt.Errorf("proctree: start %s: the shim did not answer: %w", cmd.Path, err))
		}
		if !m.Released {
			err := errors.New(m.Err)
			if m.Errno != 0 {
				err = fmt.Errorf("%s: %w", m.Err, syscall.Errno(m.Errno))
			}
			return fail(fmt.Errorf("proctree: start %s: %w", cmd.Path, err))
		}
	}
	return nil
}

// waitShim follows a shimmed tree: the leader's status as the shim relays
// it, then the shim's end, then emptiness. A shim that said its subtree is
// empty holds nothing any more: the tree may be done before the shim's own
// exit is collected.
func (t *Tree) waitShim() {
	b := t.b.shimHost()
	exited, empty := false, false
	for !empty {
		var m shimMsg
		if t.shim.dec.Decode(&m) != nil {
			break
		}
		if m.Empty {
			empty = true
			b.shimEnded()
		}
		if m.Exit && !exited {
			t.state = relayedStatus(unix.WaitStatus(m.Status))
			exited = true
			close(t.exited)
		}
	}
	collect := func() error {
		awaitExit(t.shimCmd.Process.Pid)
		err := t.shimCmd.Wait()
		reaper.Unprotect(t.shimCmd.Process.Pid)
		t.shim.f.Close()
		return err
	}
	if !empty {
		// The shim was killed: what it held is ours now (re-parented to
		// us, the next subreaper), the leader included if it lives. The
		// kernel has re-parented them once the shim can be waited for.
		err := collect()
		n := b.adoptOrphans()
		t.log.Warn("proctree: a tree's shim died", "instance", t.id, "shim", t.shimCmd.Process.Pid, "err", err, "orphans", n)
		if !exited {
			t.state = t.collectOrphanedLeader(b)
			close(t.exited)
		}
	}
	if err := b.waitEmpty(context.Background()); err != nil {
		t.log.Warn("proctree: waiting for empty tree", "instance", t.id, "err", err)
	}
	if err := b.release(); err != nil {
		t.log.Warn("proctree: release container", "instance", t.id, "err", err)
	}
	close(t.done)
	if empty {
		collect()
	}
}

// collectOrphanedLeader waits for a leader whose shim died before it: it is
// our child now. Nil if it is gone already (its status went with the shim).
func (t *Tree) collectOrphanedLeader(b *pgroupBackend) *ExitStatus {
	st, err := procinfo.ReadStat(t.leader)
	if err != nil || st.StartTicks != b.leaderStart || st.PPID != b.self {
		return nil
	}
	awaitExit(t.leader)
	var ws unix.WaitStatus
	for {
		got, err := unix.Wait4(t.leader, &ws, 0, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil || got != t.leader {
			return nil
		}
		return relayedStatus(ws)
	}
}

func relayedStatus(ws unix.WaitStatus) *ExitStatus {
	e := &ExitStatus{code: -1}
	switch {
	case ws.Exited():
		e.code = ws.ExitStatus()
		e.desc = "exit status " + strconv.Itoa(e.code)
	case ws.Signaled():
		e.signaled = true
		e.desc = "signal: " + ws.Signal().String()
	default:
		e.desc = fmt.Sprintf("wait status %#x", uint32(ws))
	}
	if ws.CoreDump() {
		e.desc += " (core dumped)"
	}
	return e
}

// runShim is the shim's whole life; it returns its exit code.
func runShim(fdArg string) int {
	// ptrace requests come from the thread that started the leader.
	runtime.LockOSThread()
	os.Unsetenv(shimEnvVar)
	fd, err := strconv.Atoi(fdArg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "proctree: shim: bad control descriptor", fdArg)
		return 2
	}
	unix.CloseOnExec(fd)
	ctl := os.NewFile(uintptr(fd), "shim-control")
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		fmt.Fprintln(os.Stderr, "proctree: shim: become child subreaper:", err)
		return 2
	}
	// Signals meant for the tree are sent to its members, never to the
	// shim; one that reaches it anyway (a terminal's, a stray kill) must not
	// end it before its subtree. Handled, not ignored: the leader starts
	// with default dispositions.
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, unix.SIGTERM, unix.SIGINT, unix.SIGHUP, unix.SIGQUIT, unix.SIGUSR1, unix.SIGUSR2, unix.SIGPIPE)
	go func() {
		for range sigs {
		}
	}()
	dec, enc := json.NewDecoder(ctl), json.NewEncoder(ctl)
	var sp shimSpec
	if err := dec.Decode(&sp); err != nil {
		return 2
	}
	cmd := &exec.Cmd{Path: sp.Path, Args: sp.Args, Env: sp.Env, Dir: sp.Dir, Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}
	for i := 0; i < sp.Extra; i++ {
		cmd.ExtraFiles = append(cmd.ExtraFiles, os.NewFile(uintptr(3+i), "extra"))
	}
	for _, i := range sp.Nil {
		cmd.ExtraFiles[i] = nil
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setsid: sp.Setsid, Setpgid: sp.Setpgid, Pgid: sp.Pgid,
		Setctty: sp.Setctty, Noctty: sp.Noctty, Ctty: sp.Ctty,
		Credential: sp.Credential, Ptrace: sp.Gate && !sp.Trampoline,
	}
	gated := sp.Gate && !sp.Trampoline // held under ptrace
	var tramp *trampoline
	if sp.Gate && sp.Trampoline {
		if tramp, err = newTrampoline(cmd); err != nil {
			enc.Encode(shimMsg{Err: err.Error()})
			return 1
		}
	}
	err = cmd.Start()
	if tramp != nil {
		tramp.started()
		if err != nil {
			tramp.close()
		}
	}
	if gated && cmd.Process == nil && errors.Is(err, syscall.EPERM) {
		// ptrace forbidden here (seccomp, yama): the gate runs after the
		// start, as it does without a shim.
		gated = false
		cmd.SysProcAttr.Ptrace = false
		err = cmd.Start()
	}
	if err != nil {
		m := shimMsg{Err: err.Error()}
		var errno syscall.Errno
		if errors.As(err, &errno) {
			m.Errno = int(errno)
		}
		enc.Encode(m)
		return 1
	}
	pid := cmd.Process.Pid
	if gated {
		var ws unix.WaitStatus
		if _, err := unix.Wait4(pid, &ws, unix.WALL, nil); err != nil || !ws.Stopped() {
			unix.Kill(pid, unix.SIGKILL)
			enc.Encode(shimMsg{Err: fmt.Sprintf("proctree: leader %d did not stop at the gate (%v, status %v)", pid, err, ws)})
			return reapAll(pid, nil)
		}
	}
	// The shim holds none of the tree's stdio: a reader sees EOF when the
	// members holding it are gone, and an ExtraFiles pipe closes with them.
	if null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0); err == nil {
		for i := 0; i < 3; i++ {
			unix.Dup3(int(null.Fd()), i, 0)
		}
		null.Close()
	}
	for _, f := range cmd.ExtraFiles {
		if f != nil {
			f.Close()
		}
	}
	if err := enc.Encode(shimMsg{PID: pid, Gated: gated || tramp != nil}); err != nil {
		unix.Kill(pid, unix.SIGKILL)
		return reapAll(pid, nil)
	}
	var reply shimMsg
	if err := dec.Decode(&reply); err != nil || !reply.Go {
		// Refused at the gate, or the tree is gone: the leader never runs.
		unix.Kill(pid, unix.SIGKILL)
		if tramp != nil {
			tramp.close()
		}
		return reapAll(pid, nil)
	}
	if tramp != nil {
		if err := tramp.release(); err != nil {
			unix.Kill(pid, unix.SIGKILL)
			m := shimMsg{Err: err.Error()}
			var errno syscall.Errno
			if errors.As(err, &errno) {
				m.Errno = int(errno)
			}
			enc.Encode(m)
			return reapAll(pid, nil)
		}
		if err := enc.Encode(shimMsg{Released: true}); err != nil {
			unix.Kill(pid, unix.SIGKILL)
			return reapAll(pid, nil)
		}
	}
	if gated {
		if err := unix.PtraceDetach(pid); err != nil {
			unix.Kill(pid, unix.SIGKILL)
		}
	}
	return reapAll(pid, enc)
}

// reapAll reaps every child until none is left, relaying the leader's
// status; a gone tree (enc's writes fail) changes nothing: the shim still
// holds the subtree together until it is empty.
func reapAll(leader int, enc *json.Encoder) int {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WALL, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			break // ECHILD: the subtree is empty
		}
		if pid == leader && enc != nil {
			m := shimMsg{Exit: true, Status: uint32(ws)}
			if _, err := unix.Wait4(-1, nil, unix.WALL|unix.WNOHANG, nil); err == unix.ECHILD {
				// Nothing outlives the leader: say both at once, so the
				// tree ends as promptly as the leader's own child's would.
				m.Empty = true
				enc.Encode(m)
				return 0
			}
			enc.Encode(m)
		}
	}
	if enc != nil {
		enc.Encode(shimMsg{Empty: true})
	}
	return 0
}
