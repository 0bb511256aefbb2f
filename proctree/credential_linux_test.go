package proctree_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/corral-sh/corral/internal/testproc"
	"github.com/corral-sh/corral/proctree"
)

// A tree started as another user (SysProcAttr.Credential, as corral's
// user = key sets it) is gated, contained and stopped like any other: the
// leader is held at the gate right after its execve already as that user
// (the kernel set the credentials between fork and exec, after clone3 put
// it in its cgroup as root); every member, a setsid escapee included, runs
// as the user and carries the instance marker; stop is verified complete.
func TestCredentialTreeIsGatedContainedAndStopped(t *testing.T) {
	u := testproc.User(t)
	tiers(t, func(t *testing.T, c proctree.Containment) {
		cmd := exec.Command("/bin/sh", "-c", "sleep 300 & setsid sleep 301 & wait")
		cmd.Dir = "/"
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(u.UID), Gid: uint32(u.GID)}}
		var atGate map[string]string
		var exe string
		tr, err := proctree.Start(cmd, proctree.Options{Containment: c, Gate: func(g proctree.Gated) error {
			atGate = testproc.Status(g.PID)
			exe, _ = exeOf(g.PID)
			return nil
		}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tr.Kill(context.Background()) })
		want := strings.Repeat(strconv.Itoa(u.UID)+" ", 4)
		if atGate["Uid"]+" " != want {
			t.Fatalf("at the gate the leader's Uid is %q, want %q", atGate["Uid"], want)
		}
		if !strings.HasPrefix(atGate["State"], "t") || !strings.HasSuffix(exe, "sh") {
			t.Fatalf("at the gate the leader is %q running %q: not held after its execve", atGate["State"], exe)
		}
		var ms []proctree.Process
		eventually(t, 5*time.Second, "sh and its two sleeps", func() bool {
			ms, _ = tr.Members()
			return len(ms) == 3
		})
		for _, m := range ms {
			st := testproc.Status(m.PID)
			if st["Uid"]+" " != want || !strings.HasPrefix(st["Gid"], strconv.Itoa(u.GID)+" ") {
				t.Errorf("member %d %v runs as Uid %q Gid %q, want uid %d gid %d", m.PID, m.Cmdline, st["Uid"], st["Gid"], u.UID, u.GID)
			}
			// A member read inside its execve (setsid → sleep) shows no
			// environment for a moment; the marker must come back.
			var env map[string]string
			eventually(t, 5*time.Second, fmt.Sprintf("member %d %v to show its instance marker", m.PID, m.Cmdline), func() bool {
				env = testproc.Environ(m.PID)
				return env["CORRAL_INSTANCE"] == tr.ID()
			})
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		rep, err := tr.Stop(ctx, syscall.SIGTERM, 2*time.Second)
		if err != nil || len(rep.Survivors) > 0 {
			t.Fatalf("stop: %v, survivors %v", err, rep.Survivors)
		}
		if left := testproc.OwnedBy(u.UID); len(left) > 0 {
			t.Fatalf("processes of %s left after the stop: %v", u.Name, left)
		}
	})
}

func exeOf(pid int) (string, error) { return os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe") }
