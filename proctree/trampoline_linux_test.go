package proctree_test

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/corral-sh/corral/internal/procinfo"
	"github.com/corral-sh/corral/internal/testproc"
	"github.com/corral-sh/corral/proctree"
)

// gatePaths runs fn for each way a gated leader starts on Linux: directly
// into its cgroup, under the process-group tier's shim, and directly in the
// process-group tier (NoShim).
func gatePaths(t *testing.T, fn func(t *testing.T, opts proctree.Options)) {
	for _, p := range []struct {
		name string
		opts proctree.Options
	}{
		{"cgroup", proctree.Options{Containment: proctree.ForceCgroup}},
		{"pgroup-shim", proctree.Options{Containment: proctree.ForcePgroup}},
		{"pgroup-direct", proctree.Options{Containment: proctree.ForcePgroup, NoShim: true}},
	} {
		t.Run(p.name, func(t *testing.T) {
			opts := p.opts
			if opts.Containment == proctree.ForceCgroup {
				if os.Geteuid() == 0 {
					skipWithoutCgroup(t)
				} else if m, why, _ := proctree.Resolve(proctree.Options{}); m != proctree.Cgroup {
					t.Skipf("as a non-root user without a delegated cgroup the tier is process groups with the shim (pgroup-shim covers it): %s", why)
				} else {
					opts.Containment = proctree.Auto // a delegated subtree
				}
			}
			fn(t, opts)
		})
	}
}

// gatedRun is what a gated start of one program showed.
type gatedRun struct {
	tree      *proctree.Tree
	gated     proctree.Gated
	exeAtGate string // the leader's executable while the gate ran
	// and its comm: a privileged process's exe link is not ours to read
	commAtGate string
	uidAtGate  string // its Uid line then
	out, err   string // after Done
	state      *proctree.ExitStatus
}

// startGated starts cmd with the gate forced to kind ("" = proctree's
// choice); the gate records what it saw.
func startGated(t *testing.T, opts proctree.Options, kind string, cmd *exec.Cmd) (*gatedRun, error) {
	t.Helper()
	defer proctree.ForceGate(kind)()
	r := &gatedRun{}
	opts.Gate = func(g proctree.Gated) error {
		r.gated = g
		r.exeAtGate, _ = exeOf(g.PID)
		r.uidAtGate = testproc.Status(g.PID)["Uid"]
		st, err := procinfo.ReadStat(g.PID)
		if err != nil || st.StartTicks != g.StartTicks || g.StartTicks == 0 {
			t.Errorf("at the gate the leader %d reads %+v, %v; the gate was told start %d", g.PID, st, err, g.StartTicks)
		}
		r.commAtGate = st.Comm
		return nil
	}
	tr, err := proctree.Start(cmd, opts)
	if err != nil {
		return r, err
	}
	r.tree = tr
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		tr.Kill(ctx)
	})
	if tr.PID() != r.gated.PID {
		t.Fatalf("the gate saw pid %d, the leader is %d", r.gated.PID, tr.PID())
	}
	return r, nil
}

// runToEnd runs cmd gated to its end and collects its output.
func runToEnd(t *testing.T, opts proctree.Options, kind string, cmd *exec.Cmd) *gatedRun {
	t.Helper()
	dir := t.TempDir()
	stdout, _ := os.Create(filepath.Join(dir, "stdout"))
	stderr, _ := os.Create(filepath.Join(dir, "stderr"))
	defer stdout.Close()
	defer stderr.Close()
	cmd.Stdout, cmd.Stderr = stdout, stderr
	r, err := startGated(t, opts, kind, cmd)
	if err != nil {
		t.Fatalf("start %v (gate %q): %v", cmd.Args, kind, err)
	}
	select {
	case <-r.tree.Done():
	case <-time.After(20 * time.Second):
		t.Fatalf("%v did not end", cmd.Args)
	}
	r.state, _ = r.tree.ExitState()
	b, _ := os.ReadFile(stdout.Name())
	r.out = strings.TrimSpace(string(b))
	b, _ = os.ReadFile(stderr.Name())
	r.err = strings.TrimSpace(string(b))
	return r
}

// sgidCopy copies the program prog into a temporary directory as a set-gid
// file of a group this user may give its files and is not its effective
// group: a supplementary group (as root, any group). It skips when there
// is none or the directory's file system ignores set-id bits.
func sgidCopy(t *testing.T, prog string) (path string, gid int) {
	t.Helper()
	gid = -1
	if os.Geteuid() == 0 {
		gid = 65534
	} else {
		groups, _ := os.Getgroups()
		for _, g := range groups {
			if g != os.Getegid() {
				gid = g
				break
			}
		}
	}
	if gid < 0 {
		t.Skipf("uid %d has no supplementary group besides its primary %d: a set-gid file of its own cannot change its group (CI: groupadd corral-sgid; usermod -aG corral-sgid corral-ci)", os.Getuid(), os.Getegid())
	}
	dir := t.TempDir()
	var fs unix.Statfs_t
	if err := unix.Statfs(dir, &fs); err == nil && fs.Flags&unix.ST_NOSUID != 0 {
		t.Skipf("%s is on a nosuid file system: set-gid bits are ignored there (set TMPDIR elsewhere)", dir)
	}
	src, err := exec.LookPath(prog)
	if err != nil {
		t.Skipf("%s is not installed", prog)
	}
	path = filepath.Join(dir, "sgid-"+prog)
	copyFile(t, src, path)
	if err := os.Chown(path, -1, gid); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o755|os.ModeSetgid); err != nil { // after the chown, which clears it
		t.Fatal(err)
	}
	if !proctree.PrivilegedExecutable(path) {
		t.Fatalf("%s (set-gid %d) is not seen as privileged", path, gid)
	}
	return path, gid
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// egid is the effective gid of pid.
func egid(pid int) int {
	f := strings.Fields(testproc.Status(pid)["Gid"])
	if len(f) < 2 {
		return -1
	}
	g, _ := strconv.Atoi(f[1])
	return g
}

// A set-gid program started through a gate runs with its group: the
// trampoline holds it before its execve instead of tracing it. The Gated
// record names the real program (same pid and start ticks once it runs),
// and the program had not run at the gate. Negative control: the same start
// held under ptrace loses the group, unless the tracer has CAP_SYS_PTRACE
// (root), for which the kernel keeps it: the case proctree leaves to ptrace.
// Recent kernels (seen on 6.18) keep it under any tracer too, the group
// being one the caller already has; the test says so and relies on the
// set-uid tests for the control.
func TestGateKeepsSetgid(t *testing.T) {
	prog, gid := sgidCopy(t, "sleep")
	keeps := proctree.TracerKeepsPrivileges()
	gatePaths(t, func(t *testing.T, opts proctree.Options) {
		for _, kind := range []string{"", "trampoline", "ptrace"} {
			r, err := startGated(t, opts, kind, exec.Command(prog, "30"))
			if err != nil {
				t.Fatalf("gate %q: %v", kind, err)
			}
			pid := r.tree.PID()
			// By its comm: a process that gained a group at execve is not
			// dumpable, and its /proc/PID/exe is not ours to read.
			st, err := procinfo.ReadStat(pid)
			if err != nil || st.StartTicks != r.gated.StartTicks || st.Comm != filepath.Base(prog) {
				t.Fatalf("gate %q: the leader %d runs %q from %d (%v); the gate saw start %d", kind, pid, st.Comm, st.StartTicks, err, r.gated.StartTicks)
			}
			trampolined := kind == "trampoline" || kind == "" && !keeps
			if trampolined && r.commAtGate != "exe" {
				t.Fatalf("gate %q: at the gate the leader was %q, not the trampoline (/proc/self/exe)", kind, r.commAtGate)
			}
			if !trampolined && r.commAtGate != filepath.Base(prog) {
				t.Fatalf("gate %q: under ptrace the gate saw %q, not the program after its execve", kind, r.commAtGate)
			}
			got := egid(pid)
			switch {
			case kind == "ptrace" && !keeps && got == os.Getegid():
				t.Logf("negative control: under ptrace the set-gid group was stripped")
			case kind == "ptrace" && !keeps && got == gid:
				// Linux 6.18 does this for a group the caller already
				// has; any kernel for a caller with CAP_SETUID (root
				// without CAP_SYS_PTRACE): no gain to strip.
				t.Logf("negative control not available here: under ptrace this kernel kept the set-gid group (one we already have, or we have CAP_SETUID); TestGateRunsSudo and TestGateKeepsSetuid have one")
			case got != gid:
				t.Fatalf("gate %q (tracer keeps privileges: %v): the set-gid program runs with egid %d, want %d", kind, keeps, got, gid)
			}
			t.Logf("gate %q: egid %d (file's group %d, ours %d), at the gate %q", kind, got, gid, os.Getegid(), r.commAtGate)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			r.tree.Kill(ctx)
			cancel()
		}
	})
}

// Refused at the gate, a trampolined program never runs: a set-gid touch
// that would have created a file did not. Accepted, it creates it with its
// group (the file's group is the effective gid).
func TestGateRefusalRunsNoPrivilegedProgram(t *testing.T) {
	prog, gid := sgidCopy(t, "touch")
	kind := ""
	if proctree.TracerKeepsPrivileges() {
		kind = "trampoline" // proctree would use ptrace here
	}
	gatePaths(t, func(t *testing.T, opts proctree.Options) {
		mark := filepath.Join(t.TempDir(), "ran")
		var id string
		refuse := opts
		refuse.Gate = func(g proctree.Gated) error {
			id = g.Instance
			return errors.New("journal: no space left on device")
		}
		restore := proctree.ForceGate(kind)
		_, err := proctree.Start(exec.Command(prog, mark), refuse)
		restore()
		if err == nil {
			t.Fatal("Start succeeded past a refusing gate")
		}
		time.Sleep(100 * time.Millisecond) // a leader that escaped the kill would have touched by now
		if _, serr := os.Stat(mark); serr == nil {
			t.Fatal("the privileged program ran although the gate refused")
		}
		if left := testproc.Carriers(id); len(left) > 0 {
			t.Fatalf("refused leader left %v", left)
		}
		r := runToEnd(t, opts, kind, exec.Command(prog, mark))
		var st unix.Stat_t
		if err := unix.Stat(mark, &st); err != nil || r.state == nil || !r.state.Success() {
			t.Fatalf("accepted, touch ended %v (%s) and left %v", r.state, r.err, err)
		}
		if int(st.Gid) != gid {
			t.Fatalf("accepted, touch created its file with group %d, want the set-gid group %d", st.Gid, gid)
		}
	})
}

// skipAsRoot: root gains nothing from a set-uid-root program, and its ptrace
// strips nothing.
func skipAsRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		t.Skip("as root a set-uid-root program gains nothing to lose (and root's ptrace strips nothing): run as a non-root user, e.g. runuser -u corral-ci -- proctree.test -test.run 'Sudo|Setuid'")
	}
}

// The reported case: as a non-root user, command = ["sudo", "-n", "true"]
// (argv form, no shell in between) runs sudo as root, journaled at the gate
// (with the leader's pid) before sudo ran. Negative control: held under
// ptrace, sudo fails ("effective uid is not 0").
func TestGateRunsSudo(t *testing.T) {
	skipAsRoot(t)
	sudo, err := exec.LookPath("sudo")
	if err != nil {
		t.Skip("sudo is not installed (CI: apt-get install -y sudo)")
	}
	if out, err := exec.Command(sudo, "-n", "true").CombinedOutput(); err != nil {
		t.Skipf("no sudoers rule lets uid %d run /usr/bin/true without a password (%v: %s); CI: /etc/sudoers.d/corral-ci: corral-ci ALL=(root) NOPASSWD: /usr/bin/true", os.Getuid(), err, strings.TrimSpace(string(out)))
	}
	if !proctree.PrivilegedExecutable(sudo) {
		t.Fatalf("%s is not seen as set-uid", sudo)
	}
	self, _ := os.Executable()
	gatePaths(t, func(t *testing.T, opts proctree.Options) {
		r := runToEnd(t, opts, "", exec.Command("sudo", "-n", "true"))
		if r.state == nil || !r.state.Success() {
			t.Fatalf("sudo -n true ended %v: %s", r.state, r.err)
		}
		if r.exeAtGate == sudo || r.exeAtGate != self {
			t.Fatalf("at the gate the leader ran %q (the trampoline is %q): not held before sudo ran", r.exeAtGate, self)
		}
		neg := runToEnd(t, opts, "ptrace", exec.Command("sudo", "-n", "true"))
		if neg.state == nil || neg.state.Success() {
			t.Fatalf("negative control: under ptrace sudo succeeded (%v): the test cannot see the difference", neg.state)
		}
		t.Logf("under ptrace: %v: %s", neg.state, neg.err)
	})
}

// CORRAL_SETUID_FIXTURE names a root-owned set-uid (4755) copy of
// /usr/bin/id that this user can run: it reports euid 0 when gated, its
// user's uid under ptrace.
func TestGateKeepsSetuid(t *testing.T) {
	skipAsRoot(t)
	fixture := os.Getenv("CORRAL_SETUID_FIXTURE")
	if fixture == "" {
		t.Skip("CORRAL_SETUID_FIXTURE is unset (CI, as root: install -d -m 0755 /opt/corral-ci && install -m 4755 -o root -g root /usr/bin/id /opt/corral-ci/id-setuid; CORRAL_SETUID_FIXTURE=/opt/corral-ci/id-setuid)")
	}
	fi, err := os.Stat(fixture)
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != 0 || fi.Mode()&os.ModeSetuid == 0 {
		t.Fatalf("CORRAL_SETUID_FIXTURE=%s is %v owned by uid %d: want a set-uid root copy of id", fixture, fi.Mode(), st.Uid)
	}
	gatePaths(t, func(t *testing.T, opts proctree.Options) {
		r := runToEnd(t, opts, "", exec.Command(fixture, "-u"))
		if r.out != "0" {
			t.Fatalf("gated, the set-uid id says euid %q (%s), want 0", r.out, r.err)
		}
		neg := runToEnd(t, opts, "ptrace", exec.Command(fixture, "-u"))
		if neg.out != strconv.Itoa(os.Geteuid()) {
			t.Fatalf("negative control: under ptrace the set-uid id says euid %q, want ours %d", neg.out, os.Geteuid())
		}
	})
}

// What the Go runtime of the trampoline could leave to the program it
// execs: signal dispositions and mask, capabilities, ids, limits (the
// runtime raises RLIMIT_NOFILE), descriptors (ExtraFiles keep their
// numbers, a nil one stays closed, the trampoline's socket is not
// inherited). Each must be what the same start under ptrace gives; a
// signal this process ignores stays ignored.
func TestTrampolineLeavesTheProgramAsPtraceDoes(t *testing.T) {
	signal.Ignore(syscall.SIGUSR1)
	t.Cleanup(func() {
		// Reset would leave it ignored; Notify reinstalls Go's handler.
		c := make(chan os.Signal, 1)
		signal.Notify(c, syscall.SIGUSR1)
		signal.Stop(c)
	})
	extra, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	// Each read by the leader itself, a program that touches none of it.
	probes := [][]string{
		{"grep", "-E", "^(Sig(Blk|Ign|Cgt)|Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs|Seccomp|Uid|Gid|Groups|Umask)", "/proc/self/status"},
		{"cat", "/proc/self/limits"},
		{"ls", "/proc/self/fd"},
		{"pwd"},
	}
	gatePaths(t, func(t *testing.T, opts proctree.Options) {
		outs := map[string]string{}
		for _, kind := range []string{"ptrace", "trampoline"} {
			for _, p := range probes {
				path := p[0]
				if p[0] == "pwd" {
					path = "/bin/pwd" // not the shell builtin
				}
				cmd := exec.Command(path, p[1:]...)
				cmd.Dir = "/"
				cmd.ExtraFiles = []*os.File{nil, extra}
				r := runToEnd(t, opts, kind, cmd)
				if r.state == nil || !r.state.Success() {
					t.Fatalf("gate %q: %v: %v: %s", kind, p, r.state, r.err)
				}
				outs[kind] += r.out + "\n"
			}
		}
		if outs["ptrace"] != outs["trampoline"] {
			t.Fatalf("under ptrace:\n%s\n\nafter the trampoline:\n%s", outs["ptrace"], outs["trampoline"])
		}
		if !opts.NoShim && opts.Containment == proctree.ForcePgroup {
			return // the shim's own Go runtime handles SIGUSR1: both start it default
		}
		for _, l := range strings.Split(outs["trampoline"], "\n") {
			if v, ok := strings.CutPrefix(l, "SigIgn:"); ok {
				n, _ := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
				if n&(1<<(syscall.SIGUSR1-1)) == 0 {
					t.Fatalf("SIGUSR1, ignored here, is not ignored in the program: %s", l)
				}
			}
		}
	})
}

// An exec that fails after the gate (here: a set-gid file the user may
// not execute... simpler, a file without execute permission, forced
// through the trampoline) fails Start as it would without the trampoline,
// and leaves nothing.
func TestTrampolineExecFailureFailsStart(t *testing.T) {
	noexec := filepath.Join(t.TempDir(), "noexec")
	if err := os.WriteFile(noexec, []byte("#!/bin/sh\necho ran\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	gatePaths(t, func(t *testing.T, opts proctree.Options) {
		for _, kind := range []string{"ptrace", "trampoline"} {
			var id string
			opts := opts
			opts.Gate = func(g proctree.Gated) error { id = g.Instance; return nil }
			restore := proctree.ForceGate(kind)
			cmd := exec.Command(noexec)
			_, err := proctree.Start(cmd, opts)
			restore()
			if !errors.Is(err, syscall.EACCES) {
				t.Fatalf("gate %q: Start of a file without x: %v, want EACCES", kind, err)
			}
			t.Logf("gate %q: %v", kind, err)
			if id != "" {
				eventually(t, 5*time.Second, "no carrier left", func() bool { return len(testproc.Carriers(id)) == 0 })
			}
		}
	})
}

// As root with a service user (SysProcAttr.Credential): the trampoline
// starts as root (the target user may not be able to execute corral's
// binary) and applies the credential itself before its execve, the working
// directory after it, as the kernel's child does: a directory the user may
// not enter fails the start.
func TestTrampolineAppliesTheCredential(t *testing.T) {
	u := testproc.User(t)
	cred := &syscall.Credential{Uid: uint32(u.UID), Gid: uint32(u.GID)}
	closed := t.TempDir() // 0700 root
	gatePaths(t, func(t *testing.T, opts proctree.Options) {
		cmd := exec.Command("/bin/sh", "-c", "id -u; id -g; id -G; pwd")
		cmd.Dir = "/"
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		r := runToEnd(t, opts, "trampoline", cmd)
		want := strings.Join([]string{strconv.Itoa(u.UID), strconv.Itoa(u.GID), strconv.Itoa(u.GID), "/"}, "\n")
		if r.out != want {
			t.Fatalf("as %s the program says %q (%s), want %q", u.Name, r.out, r.err, want)
		}
		if !strings.HasPrefix(r.uidAtGate, "0 ") {
			t.Fatalf("the trampoline runs as %q at the gate, want root", r.uidAtGate)
		}
		if cmd.SysProcAttr.Credential != cred {
			t.Fatal("Start did not give the caller's SysProcAttr back")
		}
		for _, kind := range []string{"ptrace", "trampoline"} {
			cmd := exec.Command("/bin/true")
			cmd.Dir = closed
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
			_, err := startGated(t, opts, kind, cmd)
			if !errors.Is(err, syscall.EACCES) {
				t.Fatalf("gate %q: as %s in a directory it may not enter: %v, want EACCES", kind, u.Name, err)
			}
		}
	})
}

// The choice of gate reads what execve reads: set-uid, set-gid with group
// execute (without it the bit means mandatory locking), and file
// capabilities (security.capability, which only root can set).
func TestPrivilegedExecutableDetection(t *testing.T) {
	dir := t.TempDir()
	plain := filepath.Join(dir, "plain")
	copyFile(t, "/bin/true", plain)
	if proctree.PrivilegedExecutable(plain) {
		t.Fatal("a plain copy of true is seen as privileged")
	}
	for _, c := range []struct {
		mode os.FileMode
		want bool
	}{
		{0o755 | os.ModeSetuid, true},
		{0o755 | os.ModeSetgid, true},
		{0o745 | os.ModeSetgid, false}, // no group execute: not set-gid for execve
	} {
		if err := os.Chmod(plain, c.mode); err != nil {
			t.Fatal(err)
		}
		if got := proctree.PrivilegedExecutable(plain); got != c.want {
			t.Errorf("mode %v: privileged %v, want %v", c.mode, got, c.want)
		}
	}
	link := filepath.Join(dir, "link")
	os.Chmod(plain, 0o755|os.ModeSetuid)
	os.Symlink(plain, link)
	if !proctree.PrivilegedExecutable(link) {
		t.Error("a symbolic link to a set-uid file is not seen as privileged (execve follows it)")
	}
	setcap, err := exec.LookPath("setcap")
	if os.Geteuid() != 0 || err != nil {
		t.Skip("file capabilities need root and setcap (Debian: libcap2-bin) to set")
	}
	caps := filepath.Join(dir, "caps")
	copyFile(t, "/bin/true", caps)
	if out, err := exec.Command(setcap, "cap_net_bind_service+ep", caps).CombinedOutput(); err != nil {
		t.Skipf("setcap: %v: %s", err, out)
	}
	if !proctree.PrivilegedExecutable(caps) {
		t.Fatal("a file with capabilities is not seen as privileged")
	}
}
