package proctree

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// The trampoline is the gate for programs that gain privilege at execve
// (set-uid, set-gid, file capabilities). Under PTRACE_TRACEME the kernel
// strips that gain unless the tracer has CAP_SYS_PTRACE over the new
// credentials (cap_bprm_creds_from_file, ptracer_capable): started by an
// unprivileged corral, `sudo` says "effective uid is not 0". Such a leader
// starts instead as this very binary re-executed (/proc/self/exe, like the
// shim) with trampolineEnvVar naming a socket; an init function of this
// package runs it before main, so every program that links proctree can be
// its own trampoline. It blocks on the socket while the gate runs: a spec
// (the real path, and what it must apply itself) means go, EOF means
// refused (it exits; the starter kills it anyway). On go it execs the real
// program in place: the pid and the start time (procinfo start ticks) do
// not change across execve, so the Gated record names the real program. If
// the exec fails it says why on the socket; a successful exec closes the
// trampoline's end (close-on-exec), which the starter reads as EOF, so
// Start returns once the real program is in place, as under ptrace.
//
// It is weaker than ptrace in one way: the gate runs before the program's
// execve, not after it, so a failing exec is reported after the gate (and
// journaled as a spawn that then failed). It is used only where ptrace
// would strip a privilege.

// trampolineEnvVar carries the control socket's descriptor number to a
// trampoline.
const trampolineEnvVar = "CORRAL_PROCTREE_TRAMPOLINE"

func init() {
	if fd := os.Getenv(trampolineEnvVar); fd != "" {
		runTrampoline(fd) // execs or exits
	}
}

// trampolineSpec is what the trampoline receives on go.
type trampolineSpec struct {
	Path string `json:"path"`
	// Dir and Credential are applied by the trampoline itself, in this
	// order after the credential as the kernel's child does: the
	// trampoline runs this binary, which the target user may not be able
	// to execute (a 0700 home), so it starts with the starter's identity.
	Dir        string              `json:"dir,omitempty"`
	Credential *syscall.Credential `json:"credential,omitempty"`
	// Ignored is the starter's SigIgn: a program started directly inherits
	// these as ignored, but the Go runtime of the trampoline replaced most
	// of them with its own handlers, which execve resets to default.
	Ignored uint64 `json:"ignored,omitempty"`
}

// trampolineReply is the trampoline's answer when the exec failed.
type trampolineReply struct {
	Op    string `json:"op"`
	Path  string `json:"path,omitempty"`
	Err   string `json:"err"`
	Errno int    `json:"errno,omitempty"`
}

// Gate kinds, for forceGate.
const (
	gateChoose int32 = iota
	gatePtrace
	gateTrampoline
)

// forceGate overrides the choice of gate (tests: the negative control that
// ptrace strips the privilege, and the latency comparison).
var forceGate atomic.Int32

// useTrampoline reports whether the leader cmd starts must be gated by a
// trampoline: its executable gains privilege at execve and a ptrace gate
// of ours would strip it.
func useTrampoline(cmd *exec.Cmd) bool {
	switch forceGate.Load() {
	case gatePtrace:
		return false
	case gateTrampoline:
		return true
	}
	return privilegedExecutable(execPath(cmd)) && !tracerKeepsPrivileges()
}

// execPath is the file the kernel will execute for cmd: a relative Path is
// resolved in the child's working directory.
func execPath(cmd *exec.Cmd) string {
	if !filepath.IsAbs(cmd.Path) && cmd.Dir != "" {
		return filepath.Join(cmd.Dir, cmd.Path)
	}
	return cmd.Path
}

// privilegedExecutable reports whether execve of path may raise
// privileges: set-uid, set-gid (with group execute, as the kernel wants)
// or file capabilities. Symbolic links are followed, as execve does. A
// script whose interpreter is privileged is not detected.
func privilegedExecutable(path string) bool {
	var st unix.Stat_t
	if unix.Stat(path, &st) != nil {
		return false
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return false
	}
	if st.Mode&unix.S_ISUID != 0 || st.Mode&(unix.S_ISGID|unix.S_IXGRP) == unix.S_ISGID|unix.S_IXGRP {
		return true
	}
	n, err := unix.Getxattr(path, "security.capability", nil)
	return err == nil && n > 0
}

// tracerKeepsPrivileges reports whether a leader we trace keeps what its
// execve grants: the kernel keeps it when the tracer has CAP_SYS_PTRACE
// in the leader's user namespace (ours), as root normally does.
func tracerKeepsPrivileges() bool {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if unix.Capget(&hdr, &data[0]) != nil {
		return false
	}
	return data[unix.CAP_SYS_PTRACE/32].Effective&(1<<(unix.CAP_SYS_PTRACE%32)) != 0
}

// trampoline is the starter's side of one trampolined start.
type trampoline struct {
	fd   int // ours; -1 once closed
	spec trampolineSpec

	cmd       *exec.Cmd
	path, dir string
	args, env []string
	extra     []*os.File
	cred      *syscall.Credential
	theirs    *os.File
}

// newTrampoline rewrites cmd to start a trampoline for its program; after
// cmd.Start, call started (whatever Start returned) to restore cmd.
func newTrampoline(cmd *exec.Cmd) (*trampoline, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("proctree: trampoline socket: %w", err)
	}
	t := &trampoline{
		fd:     fds[0],
		cmd:    cmd,
		path:   cmd.Path,
		dir:    cmd.Dir,
		args:   cmd.Args,
		env:    cmd.Env,
		extra:  cmd.ExtraFiles,
		theirs: os.NewFile(uintptr(fds[1]), "trampoline"),
	}
	t.spec = trampolineSpec{Path: cmd.Path, Ignored: ignoredSignals()}
	if cmd.SysProcAttr != nil && cmd.SysProcAttr.Credential != nil {
		t.cred = cmd.SysProcAttr.Credential
		t.spec.Credential, t.spec.Dir = t.cred, cmd.Dir
		cmd.SysProcAttr.Credential = nil
		cmd.Dir = ""
	}
	env := cmd.Env
	if env == nil {
		env = os.Environ()
	}
	fd := 3 + len(cmd.ExtraFiles) // after the program's own: they keep their numbers
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		if !strings.HasPrefix(kv, trampolineEnvVar+"=") && !strings.HasPrefix(kv, shimEnvVar+"=") {
			out = append(out, kv)
		}
	}
	cmd.Env = append(out, trampolineEnvVar+"="+strconv.Itoa(fd))
	cmd.Path = "/proc/self/exe"
	// The real argv: what ps shows during the gate, and what the program
	// gets (the trampoline execs it with its own os.Args).
	if len(cmd.Args) == 0 {
		cmd.Args = []string{t.path}
	}
	cmd.ExtraFiles = append(append([]*os.File(nil), cmd.ExtraFiles...), t.theirs)
	return t, nil
}

// started restores cmd to what the caller gave and drops our copy of the
// trampoline's end.
func (t *trampoline) started() {
	t.theirs.Close()
	t.cmd.Path, t.cmd.Dir, t.cmd.Args, t.cmd.Env, t.cmd.ExtraFiles = t.path, t.dir, t.args, t.env, t.extra
	if t.cred != nil {
		t.cmd.SysProcAttr.Credential = t.cred
	}
	// Start copied the environment; callers see the one they set (with
	// the instance marker Start added), not the trampoline's variable.
}

// release lets the trampoline exec its program and waits until it has:
// nil once the real program is in place.
func (t *trampoline) release() error {
	defer t.close()
	b, err := json.Marshal(t.spec)
	if err != nil {
		return err
	}
	for len(b) > 0 {
		n, err := unix.Write(t.fd, b)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("release the trampoline: %w", err)
		}
		b = b[n:]
	}
	unix.Shutdown(t.fd, unix.SHUT_WR)
	got, err := readAll(t.fd)
	if err != nil {
		return fmt.Errorf("release the trampoline: %w", err)
	}
	if len(got) == 0 {
		return nil // closed on exec: the program runs
	}
	var r trampolineReply
	if err := json.Unmarshal(got, &r); err != nil {
		return fmt.Errorf("the trampoline's answer %q", got)
	}
	return r.err()
}

func (r trampolineReply) err() error {
	var e error = errors.New(r.Err)
	if r.Errno != 0 {
		e = syscall.Errno(r.Errno)
	}
	return &os.PathError{Op: r.Op, Path: r.Path, Err: e}
}

// close refuses: a trampoline that reads EOF exits without running
// anything.
func (t *trampoline) close() {
	if t.fd >= 0 {
		unix.Close(t.fd)
		t.fd = -1
	}
}

func readAll(fd int) ([]byte, error) {
	var out []byte
	buf := make([]byte, 4096)
	for {
		n, err := unix.Read(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return out, err
		}
		if n == 0 {
			return out, nil
		}
		out = append(out, buf[:n]...)
	}
}

// ignoredSignals is this process's SigIgn: what a child it starts inherits
// as ignored.
func ignoredSignals() uint64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "SigIgn:"); ok {
			n, _ := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return n
		}
	}
	return 0
}

// runTrampoline is the trampoline's whole life: it execs the real program
// or exits.
func runTrampoline(fdArg string) {
	fd, err := strconv.Atoi(fdArg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "proctree: trampoline: bad control descriptor", fdArg)
		syscall.Exit(127)
	}
	unix.CloseOnExec(fd)
	os.Unsetenv(trampolineEnvVar)
	got, err := readAll(fd)
	if err != nil || len(got) == 0 {
		// Refused at the gate, or the starter is gone: never run it.
		// syscall.Exit, not os.Exit: nothing of this process is to be
		// finished (a race-enabled binary would sleep a second).
		syscall.Exit(127)
	}
	var sp trampolineSpec
	if err := json.Unmarshal(got, &sp); err != nil {
		syscall.Exit(127)
	}
	fail := func(op, path string, err error) {
		r := trampolineReply{Op: op, Path: path, Err: err.Error()}
		if errno, ok := err.(syscall.Errno); ok {
			r.Errno = int(errno)
		}
		b, _ := json.Marshal(r)
		unix.Write(fd, b)
		syscall.Exit(127)
	}
	if c := sp.Credential; c != nil {
		// As the kernel's child does for SysProcAttr.Credential.
		if !c.NoSetGroups {
			groups := make([]int, len(c.Groups))
			for i, g := range c.Groups {
				groups[i] = int(g)
			}
			if err := syscall.Setgroups(groups); err != nil {
				fail("setgroups", "", err)
			}
		}
		if err := syscall.Setgid(int(c.Gid)); err != nil {
			fail("setgid", strconv.Itoa(int(c.Gid)), err)
		}
		if err := syscall.Setuid(int(c.Uid)); err != nil {
			fail("setuid", strconv.Itoa(int(c.Uid)), err)
		}
	}
	if sp.Dir != "" {
		if err := syscall.Chdir(sp.Dir); err != nil {
			fail("chdir", sp.Dir, err)
		}
	}
	for sig := 1; sig <= 64; sig++ {
		if sp.Ignored&(1<<(sig-1)) != 0 {
			signal.Ignore(syscall.Signal(sig))
		}
	}
	err = syscall.Exec(sp.Path, os.Args, os.Environ())
	fail("fork/exec", sp.Path, err)
}
