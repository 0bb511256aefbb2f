package proctree_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/corral-sh/corral/internal/testproc"
	"github.com/corral-sh/corral/proctree"
)

// A launcher that starts a daemon and exits: the leader's exit does not make
// the tree empty, and Done waits for the whole container.
func TestDoneWaitsForWholeTree(t *testing.T) {
	tiers(t, func(t *testing.T, c proctree.Containment) {
		tr := start(t, testproc.Command("daemonize"), c)
		<-tr.Exited()
		var ms []proctree.Process
		eventually(t, 5*time.Second, "the daemon to be a member", func() bool {
			ms, _ = tr.Members()
			return len(ms) == 1
		})
		select {
		case <-tr.Done():
			t.Fatal("Done closed while the daemon is alive")
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := tr.Stop(ctx, syscall.SIGTERM, time.Second); err != nil {
			t.Fatal(err)
		}
		assertEmpty(t, tr, tr.PID())
	})
}

// A descendant that keeps the leader's stdout open must not hold up the
// leader's exit status. Plain exec.Cmd with a bytes.Buffer waits for EOF,
// which never comes while the daemon lives.
func TestOutputHeldByDescendantDoesNotBlock(t *testing.T) {
	tiers(t, func(t *testing.T, c proctree.Containment) {
		var out bytes.Buffer
		cmd := testproc.Command("daemonize")
		cmd.Stdout = &out
		tr := start(t, cmd, c)
		select {
		case <-tr.Exited():
		case <-time.After(10 * time.Second):
			t.Fatal("leader exit not reported while a daemon holds its stdout")
		}
		if ms, _ := tr.Members(); len(ms) != 1 {
			t.Fatalf("want the daemon alive holding the pipe, members %v", ms)
		}
	})
	t.Run("negative-control", func(t *testing.T) {
		id := "negative-control-" + t.Name()
		var out bytes.Buffer
		cmd := testproc.Command("daemonize")
		cmd.Env = append(cmd.Env, "CORRAL_INSTANCE="+id)
		cmd.Stdout = &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		leader := cmd.Process.Pid
		waited := make(chan struct{})
		go func() { cmd.Wait(); close(waited) }()
		var daemon []int
		eventually(t, 5*time.Second, "the leader to exit and its daemon to run", func() bool {
			alive, _ := testproc.Alive(leader)
			daemon = testproc.Carriers(id)
			return !alive && len(daemon) == 1
		})
		defer func() {
			// The daemon was re-parented to this process (a subreaper since
			// the first proctree.Start): kill and reap it by PID.
			for _, pid := range daemon {
				syscall.Kill(pid, syscall.SIGKILL)
				var ws syscall.WaitStatus
				syscall.Wait4(pid, &ws, 0, nil)
			}
			<-waited
		}()
		select {
		case <-waited:
			t.Fatal("exec.Cmd.Wait returned while a descendant holds stdout: the control no longer shows the hazard")
		case <-time.After(300 * time.Millisecond):
			t.Logf("exec.Cmd.Wait still blocked 300ms after the leader exited (daemon %v holds stdout)", daemon)
		}
	})
}

func TestFreezeStopsTheTree(t *testing.T) {
	tiers(t, func(t *testing.T, c proctree.Containment) {
		tr, ms := startWebUI(t, c)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := tr.Freeze(ctx); err != nil {
			t.Fatal(err)
		}
		if c == proctree.ForcePgroup {
			for _, m := range ms {
				if _, stopped := testproc.Alive(m.PID); !stopped {
					t.Errorf("member %d not stopped after Freeze", m.PID)
				}
			}
		} else {
			dir := cgroupDir(t, tr.PID())
			ev, _ := os.ReadFile(filepath.Join(dir, "cgroup.events"))
			if !strings.Contains(string(ev), "frozen 1") {
				t.Errorf("cgroup.events after Freeze: %q", ev)
			}
		}
		// A frozen respawner cannot replace a child killed under it.
		var respawner int
		for _, m := range ms {
			if fixtureName(m.PID) == "respawner" {
				respawner = m.PID
			}
		}
		child := childOf(ms, respawner)
		syscall.Kill(child, syscall.SIGKILL)
		eventually(t, 5*time.Second, "the killed child to go", func() bool {
			alive, _ := testproc.Alive(child)
			return !alive
		})
		if now, _ := tr.Members(); len(now) != len(ms)-1 {
			t.Errorf("frozen tree changed size: %d members, want %d", len(now), len(ms)-1)
		}
		if err := tr.Thaw(); err != nil {
			t.Fatal(err)
		}
		eventually(t, 5*time.Second, "the thawed respawner to replace its child", func() bool {
			now, _ := tr.Members()
			return len(now) == len(ms)
		})
	})
}

func cgroupDir(t *testing.T, pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if p, ok := strings.CutPrefix(line, "0::"); ok {
			return "/sys/fs/cgroup/unified" + p
		}
	}
	t.Fatal("no cgroup2 line")
	return ""
}

func TestStartFailureLeavesNothing(t *testing.T) {
	tiers(t, func(t *testing.T, c proctree.Containment) {
		parent := t.TempDir()
		opts := proctree.Options{Containment: c}
		if c == proctree.ForceCgroup {
			p, err := proctree.DefaultCgroupParent()
			if err != nil {
				t.Fatal(err)
			}
			parent = p
			opts.Instance = "start-failure-test"
		}
		_, err := proctree.Start(exec.Command(filepath.Join(t.TempDir(), "no-such-program")), opts)
		if err == nil {
			t.Fatal("Start of a missing program succeeded")
		}
		if c == proctree.ForceCgroup {
			if _, serr := os.Stat(filepath.Join(parent, opts.Instance)); !os.IsNotExist(serr) {
				t.Fatalf("failed start left its cgroup behind: %v", serr)
			}
		}
	})
}

// A library user's Auto means auto: corral's CORRAL_CONTAINMENT is read by
// corral (internal/daemon), not by proctree.
func TestAutoIgnoresCorralsEnvironment(t *testing.T) {
	want, _, err := proctree.Resolve(proctree.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("CORRAL_CONTAINMENT", "bogus")
	tr := start(t, testproc.Command("sleep"), proctree.Auto)
	if tr.Mechanism() != want {
		t.Fatalf("with CORRAL_CONTAINMENT=bogus, Auto gave %s, want %s", tr.Mechanism(), want)
	}
}
