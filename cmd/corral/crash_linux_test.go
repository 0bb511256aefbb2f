package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/corral-sh/corral/client"
	"github.com/corral-sh/corral/internal/journal"
	"github.com/corral-sh/corral/internal/procinfo"
	"github.com/corral-sh/corral/internal/testproc"
	"github.com/corral-sh/corral/proctree"
)

func containments(t *testing.T, fn func(t *testing.T, c string)) {
	for _, c := range []string{"cgroup", "pgroup"} {
		t.Run(c, func(t *testing.T) {
			if c == "cgroup" {
				// Root, or a subtree delegated to this user.
				if _, _, err := proctree.Resolve(proctree.Options{Containment: proctree.ForceCgroup}); err != nil {
					t.Skipf("cgroup tier unavailable here (euid %d): %v", os.Geteuid(), err)
				}
			}
			fn(t, c)
		})
	}
}

// foreground starts `corral daemon` as a child and waits until it answers.
func (e *env) foreground(args ...string) (*exec.Cmd, *bytes.Buffer) {
	e.t.Helper()
	d := e.command(append([]string{"daemon"}, args...)...)
	out := &bytes.Buffer{}
	d.Stdout, d.Stderr = out, out
	// The keeper inherits the daemon's stderr; a keeper stopped by a test
	// would otherwise hold Wait forever.
	d.WaitDelay = 5 * time.Second
	if err := d.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { d.Process.Kill(); d.Wait() })
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := e.client().Daemon(context.Background()); err == nil {
			return d, out
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("daemon never answered:\n%s", out)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func carriersOf(ids []string) []int {
	var all []int
	for _, id := range ids {
		all = append(all, testproc.Carriers(id)...)
	}
	return all
}

// keeperOf finds the keeper: the daemon's child running __keeper.
func keeperOf(t *testing.T, daemonPID int) int {
	ss, _ := procinfo.Snapshot()
	for _, s := range ss {
		if argv, _ := procinfo.Cmdline(s.PID); s.PPID == daemonPID && len(argv) > 1 && argv[1] == "__keeper" {
			return s.PID
		}
	}
	t.Fatalf("no keeper under daemon %d", daemonPID)
	return 0
}

func waitGone(t *testing.T, ids []string, within time.Duration, what string) time.Duration {
	t.Helper()
	began := time.Now()
	for len(carriersOf(ids)) > 0 {
		if time.Since(began) > within {
			t.Fatalf("%s: %v still alive after %v", what, carriersOf(ids), within)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(began)
}

func TestE2EDaemonSIGKILLedLeavesNothing(t *testing.T) {
	containments(t, func(t *testing.T, c string) {
		e := newEnv(t, webuiTOML(freePort(t), ""))
		d, _ := e.foreground("--containment", c)
		e.must("ensure", "webui")
		ids := e.instances()
		if n := len(carriersOf(ids)); n < testproc.WebUISize {
			t.Fatalf("only %d processes before the kill", n)
		}
		d.Process.Signal(syscall.SIGKILL)
		d.Wait()
		took := waitGone(t, ids, 2*time.Second, "after SIGKILL of the daemon")
		t.Logf("%s: every supervised process gone %v after the daemon's SIGKILL", c, took)
		assertNoGroups(t, ids)
	})
}

// Daemon and keeper both SIGKILLed: nothing can act until the next start,
// which must reap it all (and journal it) before starting anything.
func TestE2ENextStartReapsWhatADeadDaemonLeft(t *testing.T) {
	containments(t, func(t *testing.T, c string) {
		port := freePort(t)
		e := newEnv(t, webuiTOML(port, ""))
		d, _ := e.foreground("--containment", c)
		e.must("ensure", "webui")
		ids := e.instances()
		keeper := keeperOf(t, d.Process.Pid)
		syscall.Kill(keeper, syscall.SIGSTOP) // so it cannot act on the daemon's death
		d.Process.Signal(syscall.SIGKILL)
		syscall.Kill(keeper, syscall.SIGKILL)
		d.Wait()
		// Negative control: with neither daemon nor keeper, the tree lives on.
		time.Sleep(200 * time.Millisecond)
		if n := len(carriersOf(ids)); n < testproc.WebUISize {
			t.Fatalf("without daemon and keeper only %d processes remain: the control shows nothing", n)
		}
		// A crash mid-write leaves a torn last line.
		jpath := filepath.Join(e.dir, ".corral", journal.FileName)
		f, _ := os.OpenFile(jpath, os.O_APPEND|os.O_WRONLY, 0)
		f.WriteString(`{"seq":99,"kind":"spa`)
		f.Close()

		began := time.Now()
		e.foreground("--containment", c)
		waitGone(t, ids, 2*time.Second, "after the next daemon start")
		assertNoGroups(t, ids)
		t.Logf("%s: leftovers gone %v after the next daemon was started", c, time.Since(began))
		if time.Since(began) > 2*time.Second+time.Second {
			t.Fatalf("reaping took %v after the start (the CLI under -race adds up to a second)", time.Since(began))
		}
		var reaped, torn bool
		var reapSeq, spawnSeq uint64
		e.client().Events(context.Background(), 0, false, func(ev client.Event) error {
			switch {
			case ev.Kind == "reap" && ev.Instance == ids[0] && ev.Fields["killed"] != "0":
				reaped, reapSeq = true, ev.Seq
			case ev.Kind == "torn":
				torn = true
			case ev.Kind == "spawn" && spawnSeq == 0 && ev.Seq > reapSeq && reaped:
				spawnSeq = ev.Seq
			}
			return nil
		})
		if !reaped || !torn {
			t.Fatalf("events: reaped=%v torn=%v", reaped, torn)
		}
		// The port the leftover held is free again: the service comes up on it.
		out := e.must("ensure", "webui")
		if !strings.Contains(out, "ready") {
			t.Fatalf("after the reap: %s", out)
		}
	})
}

func TestE2EExitWith(t *testing.T) {
	app := exec.Command("sleep", "60")
	if err := app.Start(); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, webuiTOML(freePort(t), ""))
	d, out := e.foreground("--exit-with", strconv.Itoa(app.Process.Pid))
	e.must("ensure", "webui")
	ids := e.instances()
	app.Process.Kill()
	app.Wait()
	if err := d.Wait(); err != nil {
		t.Fatalf("daemon after its app exited: %v\n%s", err, out)
	}
	if !strings.Contains(out.String(), "verified: 0 supervised processes remain") {
		t.Fatalf("no verified shutdown:\n%s", out)
	}
	if left := carriersOf(ids); len(left) > 0 {
		t.Fatalf("left %v", left)
	}
}

// A journal entry whose pid now belongs to an unrelated process (another
// start time) must never lead to a signal to that process.
func TestE2EReusedPIDIsNeverSignalled(t *testing.T) {
	sigLog := filepath.Join(t.TempDir(), "signals")
	decoy := testproc.Command("sleep")
	decoy.Env = append(decoy.Env, testproc.SigLogEnv+"="+sigLog)
	if err := decoy.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { decoy.Process.Kill(); decoy.Wait() }()
	st, err := procinfo.ReadStat(decoy.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, "[services.a]\ncommand = [\"/bin/sleep\", \"100\"]\nautostart = false\n")
	os.MkdirAll(filepath.Join(e.dir, ".corral"), 0o700)
	rec, _ := json.Marshal(journal.Event{Seq: 1, Kind: journal.Spawn, Service: "a", Instance: "0123456789abcdef01234567",
		PID: decoy.Process.Pid, Start: st.StartTicks + 4242, Boot: procinfo.BootID(), Cmdline: []string{"/bin/sleep", "100"}})
	os.WriteFile(filepath.Join(e.dir, ".corral", journal.FileName), append(rec, '\n'), 0o600)

	out := e.must("reap", "--dry-run")
	if !strings.Contains(out, fmt.Sprintf("pid %d now belongs to an unrelated process", decoy.Process.Pid)) {
		t.Fatalf("reap --dry-run:\n%s", out)
	}
	out = e.must("reap")
	if !strings.Contains(out, "left alone") || !strings.Contains(out, "stopped 0 processes") {
		t.Fatalf("reap:\n%s", out)
	}
	e.foreground()
	if alive, stopped := testproc.Alive(decoy.Process.Pid); !alive || stopped {
		t.Fatalf("decoy alive=%v stopped=%v", alive, stopped)
	}
	if b, _ := os.ReadFile(sigLog); len(b) > 0 {
		t.Fatalf("the unrelated process received signals: %s", b)
	}
	var reused bool
	e.client().Events(context.Background(), 0, false, func(ev client.Event) error {
		reused = reused || (ev.Kind == "reused" && ev.PID == decoy.Process.Pid)
		return nil
	})
	if !reused {
		t.Fatal("the journal does not record the skipped, reused pid")
	}
}

// No disk space for the journal: the service does not start, and the error
// says why.
func TestE2EUnwritableJournalRefusesStarts(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs as the state directory")
	}
	e := newEnv(t, "[services.a]\ncommand = [\"/bin/sleep\", \"100\"]\nautostart = false\n")
	state := filepath.Join(e.dir, ".corral")
	os.MkdirAll(state, 0o700)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=256k,mode=0700", "tmpfs", state).CombinedOutput(); err != nil {
		t.Skipf("cannot mount tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", state).Run() })
	e.foreground()
	// Fill the state directory's filesystem, and the slack in the journal's
	// last page (blank lines are valid journal content).
	filler, _ := os.Create(filepath.Join(state, "filler"))
	filler.Write(make([]byte, 1<<20))
	filler.Close()
	jf, _ := os.OpenFile(filepath.Join(state, journal.FileName), os.O_APPEND|os.O_WRONLY, 0)
	for {
		if _, err := jf.Write([]byte("\n")); err != nil {
			break
		}
	}
	jf.Close()
	out, code := e.corral("start", "a")
	if code == 0 || !strings.Contains(out, "cannot journal the spawn") || !strings.Contains(out, "no space left on device") {
		t.Fatalf("start with a full journal disk exited %d:\n%s", code, out)
	}
	if s := e.inspect("a"); s.State == "ready" || s.PID != 0 {
		t.Fatalf("service state %+v", s)
	}
	os.Remove(filepath.Join(state, "filler"))
	e.must("start", "a")
}

// A port held by a leftover of an earlier run (it carries the marker of an
// instance in our journal) is reaped, journaled, and the service starts.
func TestE2EPortHeldByAnEarlierRunIsReaped(t *testing.T) {
	port := freePort(t)
	e := newEnv(t, webuiTOML(port, "autostart = false"))
	e.foreground()
	const old = "feedfacefeedfacefeedface"
	rec, _ := json.Marshal(journal.Event{Kind: journal.Spawn, Service: "webui", Instance: old, Boot: procinfo.BootID()})
	jf, _ := os.OpenFile(filepath.Join(e.dir, ".corral", journal.FileName), os.O_APPEND|os.O_WRONLY, 0)
	jf.Write(append(rec, '\n'))
	jf.Close()

	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	lf, _ := ln.(*net.TCPListener).File()
	leftover := testproc.Command("sleep")
	leftover.Env = append(leftover.Env, "CORRAL_INSTANCE="+old)
	leftover.ExtraFiles = []*os.File{lf}
	if err := leftover.Start(); err != nil {
		t.Fatal(err)
	}
	ln.Close()
	lf.Close()
	waited := make(chan struct{})
	go func() { leftover.Wait(); close(waited) }()
	defer leftover.Process.Kill()

	out := e.must("ensure", "webui")
	if !strings.Contains(out, "ready") {
		t.Fatalf("ensure: %s", out)
	}
	select {
	case <-waited:
	case <-time.After(5 * time.Second):
		t.Fatal("the leftover holding the port was not reaped")
	}
	var reaped bool
	e.client().Events(context.Background(), 0, false, func(ev client.Event) error {
		reaped = reaped || (ev.Kind == "reap" && ev.Instance == old)
		return nil
	})
	if !reaped {
		t.Fatal("the reap of the leftover is not journaled")
	}
}

// A keeper that dies is replaced, and the replacement still tethers.
func TestE2EKeeperIsRestarted(t *testing.T) {
	e := newEnv(t, webuiTOML(freePort(t), ""))
	d, _ := e.foreground()
	e.must("ensure", "webui")
	first := keeperOf(t, d.Process.Pid)
	syscall.Kill(first, syscall.SIGKILL)
	var second int
	deadline := time.Now().Add(10 * time.Second)
	for second == 0 || second == first {
		if time.Now().After(deadline) {
			t.Fatal("no new keeper")
		}
		time.Sleep(20 * time.Millisecond)
		ss, _ := procinfo.Snapshot()
		for _, s := range ss {
			if argv, _ := procinfo.Cmdline(s.PID); s.PPID == d.Process.Pid && len(argv) > 1 && argv[1] == "__keeper" && !s.Zombie() {
				second = s.PID
			}
		}
	}
	ids := e.instances()
	d.Process.Signal(syscall.SIGKILL)
	d.Wait()
	waitGone(t, ids, 2*time.Second, "after SIGKILL of the daemon, with the replacement keeper")
}

// assertNoGroups checks that no cgroup of the given instances is left
// (empty directories are leaks too).
func assertNoGroups(t *testing.T, ids []string) {
	t.Helper()
	parent, err := proctree.DefaultCgroupParent()
	if err != nil {
		return // no cgroup tier here
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, id := range ids {
		for {
			if _, err := os.Stat(filepath.Join(parent, id)); os.IsNotExist(err) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the cgroup of instance %s was left behind", id)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}
