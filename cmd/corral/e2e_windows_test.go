package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/corral-sh/corral/client"
	"github.com/corral-sh/corral/internal/ipc"
	"github.com/corral-sh/corral/internal/procinfo"
)

// winAlive says whether the process m is still running: its pid, with the
// same creation time (wine hands out a dead process's pid again at once).
func winAlive(m client.Process) bool {
	st, err := procinfo.ReadStat(m.PID)
	return err == nil && !st.Zombie() && st.StartTicks == m.StartTicks
}

// lines counts the graceful fixtures that noted what.
func lines(prefix, what string) int {
	files, _ := filepath.Glob(prefix + ".*." + what)
	return len(files)
}

// The daemon on Windows: a shell service (cmd.exe → exe → 2 → 4) restarted
// 10 times keeps exactly its 8 processes, every old tree gone, each one
// stopped by the console event alone; then corral is TerminateProcess'ed and
// the kernel takes the tree with it.
func TestWindowsDaemonRestartsAndDies(t *testing.T) {
	exe, _ := os.Executable()
	dir := winDir(t)
	// A .bat with a space in its name, run with an argument that has one:
	// both must reach it intact through cmd.exe. It starts with `pause`,
	// which returns at once on the null device corral gives as stdin; its
	// ready line comes after it (on the prompt's line: pause ends none).
	bat := filepath.Join(dir, "start server.bat")
	os.WriteFile(bat, []byte("@echo off\r\npause\r\necho arg1=[%~1]\r\n\""+exe+"\" sleep\r\n"), 0o644)
	glog := filepath.Join(dir, "graceful")
	toml := fmt.Sprintf("[services.chain]\nshell = '\"%s\" graceful -log \"%s\" 2 2'\nenv = { CORRAL_TESTPROC = \"graceful\" }\n", exe, glog) +
		fmt.Sprintf("[services.batch]\ncommand = ['%s', 'hello world']\nenv = { CORRAL_TESTPROC = \"sleep\" }\nready = { log = 'arg1=\\[hello world\\]$', timeout = \"60s\" }\n", bat) +
		// Negative control: the same .bat with corral's stdin, a pipe
		// nobody writes to, hangs in pause.
		fmt.Sprintf("[services.pauser]\ncommand = ['%s', 'hello world']\nstdin = \"inherit\"\nenv = { CORRAL_TESTPROC = \"sleep\" }\nready = { log = 'arg1=\\[hello world\\]$', timeout = \"60s\" }\n", bat)
	stdin, stdinW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdinW.Close()
	d, derr, cl := startWinDaemon(t, dir, toml, stdin)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// Each tree has a hidden console, served by a conhost.exe in its job.
	members := func() client.Service {
		var last client.Service
		for {
			s, err := cl.Inspect(ctx, "chain")
			if err == nil {
				last = s
			}
			hosts := 0
			for _, m := range s.Members {
				if len(m.Cmdline) > 0 && strings.EqualFold(filepath.Base(m.Cmdline[0]), "conhost.exe") {
					hosts++
				}
			}
			if err == nil && s.MemberCount-hosts == 8 && hosts <= 1 {
				return s
			}
			if ctx.Err() != nil {
				for _, m := range last.Members {
					t.Logf("member %d (parent %d): %q", m.PID, m.PPID, m.Cmdline)
				}
				// Which fixtures said ready, stopped, and which still run.
				files, _ := filepath.Glob(glog + ".*")
				for _, f := range files {
					id := strings.TrimPrefix(f, glog+".")
					pid, _, _ := strings.Cut(id, "-")
					var p int
					fmt.Sscan(pid, &p)
					st, err := procinfo.ReadStat(p)
					t.Logf("fixture %s: running %v (%+v)", id, err == nil && !st.Zombie(), st)
				}
				if d.ProcessState != nil || !winAliveHandle(d) {
					t.Logf("the daemon is gone; its stderr ends:\n%s", tail(derr.String(), 3000))
				}
				lctx, lcancel := context.WithTimeout(context.Background(), 5*time.Second)
				cl.Logs(lctx, "chain", 50, false, func(l client.LogLine) error { t.Logf("chain %s: %s", l.Stream, l.Text); return nil })
				lcancel()
				t.Fatalf("chain never had 8 members: last seen %s with %d (%s), %d fixtures ready in all", last.State, last.MemberCount, last.Reason, lines(glog, "ready"))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	for {
		if _, err := cl.Ensure(ctx, "chain", time.Minute); err == nil {
			break
		} else if ctx.Err() != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := cl.Ensure(ctx, "batch", time.Minute); err != nil {
		t.Fatalf("the .bat service: %v", err)
	}
	time.Sleep(time.Second) // an absence: nothing to await
	if p, err := cl.Inspect(ctx, "pauser"); err != nil || p.State != "starting" || p.MemberCount < 2 {
		t.Fatalf("with an inherited stdin the .bat should sit in pause, starting; it is %s (%v): the control shows nothing", p.State, err)
	}
	s := members()
	const fixtures = 7 // cmd.exe runs 1 → 2 → 4 graceful fixtures
	for i := 0; i < 10; i++ {
		// A process still starting may not get the event (it would then be
		// terminated after the grace period): restart a settled tree.
		for lines(glog, "ready") < fixtures*(i+1) {
			if ctx.Err() != nil {
				for _, m := range s.Members {
					t.Logf("member %d %d %q", m.PID, m.PPID, m.Cmdline)
				}
				t.Fatalf("restart %d: %d fixtures ready", i+1, lines(glog, "ready"))
			}
			time.Sleep(20 * time.Millisecond)
		}
		old := s.Members
		if _, err := cl.Restart(ctx, "chain", "", true); err != nil {
			t.Fatalf("restart %d: %v", i+1, err)
		}
		s = members()
		for _, m := range old {
			if winAlive(m) {
				t.Fatalf("restart %d: pid %d of the old tree survives", i+1, m.PID)
			}
		}
		// The old tree ended on the console event, nothing terminated.
		if ls := s.LastStop; ls == nil || ls.Signalled < 8 || ls.Killed != 0 || lines(glog, "stopped") != fixtures*(i+1) {
			cl.Events(ctx, 1000, false, func(e client.Event) error { t.Logf("event %+v", e); return nil })
			t.Fatalf("restart %d: stop %+v, %d fixtures stopped cleanly in all; want every member ended by the event", i+1, ls, lines(glog, "stopped"))
		}
	}
	t.Logf("last stop: %+v", *s.LastStop)
	if !strings.EqualFold(s.Mechanism, "job-object") {
		t.Fatalf("mechanism %q", s.Mechanism)
	}
	doc := exec.Command(exe, "doctor")
	doc.Env = d.Env
	if out, err := doc.CombinedOutput(); err != nil || !strings.Contains(string(out), "containment: job-object") {
		t.Fatalf("corral doctor on Windows: %v\n%s", err, out)
	}
	// The journal holds every spawn with the leader's identity (pid and
	// creation time), written while the leader was still suspended.
	var spawns []client.Event
	cl.Events(ctx, 1000, false, func(e client.Event) error {
		if e.Kind == "spawn" && e.Service == "chain" {
			spawns = append(spawns, e)
		}
		return nil
	})
	st, err := procinfo.ReadStat(s.PID)
	if len(spawns) != 11 || err != nil {
		t.Fatalf("%d spawns of chain journaled, want 11 (leader: %v)", len(spawns), err)
	}
	if last := spawns[len(spawns)-1]; last.PID != s.PID || last.Start == 0 || last.Start != st.StartTicks {
		t.Fatalf("last spawn %+v: want pid %d, start %d", last, s.PID, st.StartTicks)
	}
	d.Process.Kill() // TerminateProcess: no shutdown runs
	d.Wait()
	deadline := time.Now().Add(2 * time.Second)
	for _, m := range s.Members {
		for winAlive(m) {
			if time.Now().After(deadline) {
				t.Fatalf("pid %d outlived corral by 2 s", m.PID)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// The next corral finds the dead one's instances in the journal and
	// accounts for them (a job dies with its holder: nothing is left): one
	// reap event sums up the records it found nothing of.
	d2, d2err, _ := startWinDaemon(t, dir, toml, nil)
	var summary client.Event
	for summary.Kind == "" && ctx.Err() == nil {
		cl.Events(ctx, 1000, false, func(e client.Event) error {
			if e.Kind == "reap" && e.Fields["gone"] != "" {
				summary = e
			}
			return nil
		})
		time.Sleep(50 * time.Millisecond)
	}
	if summary.Fields["gone"] != "3" {
		t.Fatalf("the next corral accounted for %q instances of the dead one, want 3 (chain, batch, pauser): %+v", summary.Fields["gone"], summary)
	}
	t.Logf("after TerminateProcess, the next corral: %q", summary.Message)
	// Stopped once running (a stop while cmd.exe is still starting the
	// program reaches cmd.exe only, and the program it then starts waits
	// out the grace period).
	for _, name := range []string{"chain", "batch", "pauser"} {
		if _, err := cl.Ensure(ctx, name, time.Minute); err != nil {
			t.Fatalf("%s on the next corral: %v\ndaemon stderr, from its crash report:\n%s", name, err, crashReport(d2err.String()))
		}
	}
	for lines(glog, "ready") < fixtures*12 && ctx.Err() == nil { // a settled tree, as above
		time.Sleep(20 * time.Millisecond)
	}
	began := time.Now()
	res, err := cl.Shutdown(ctx)
	if err != nil {
		t.Fatalf("shutdown: %v %+v", err, res)
	}
	t.Logf("verified shutdown of the next corral in %v: %+v", time.Since(began), res)
	d2.Wait()
}

// The watchdog on Windows: a tree past its process limit is frozen (every
// member suspended, none runs), and a stop then ends it without waiting out
// the grace period.
func TestWindowsWatchdogFreezesRunaway(t *testing.T) {
	exe, _ := os.Executable()
	dir := winDir(t)
	ticks := filepath.Join(dir, "ticks.log")
	toml := "[corral]\nwatch_interval = \"100ms\"\n" +
		fmt.Sprintf("[services.runaway]\nshell = '\"%s\" ticker -log \"%s\" 2 3'\nenv = { CORRAL_TESTPROC = \"ticker\" }\n", exe, ticks) +
		"limits = { processes = 6 }\non_limit = \"freeze\"\nstop = { grace = \"30s\" }\n"
	d, _, cl := startWinDaemon(t, dir, toml, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var s client.Service
	for !s.Frozen {
		if ctx.Err() != nil {
			t.Fatalf("the runaway was never frozen: %+v", s)
		}
		time.Sleep(50 * time.Millisecond)
		s, _ = cl.Inspect(ctx, "runaway")
	}
	size := func() int64 {
		if st, err := os.Stat(ticks); err == nil {
			return st.Size()
		}
		return 0 // frozen before any member wrote
	}
	time.Sleep(200 * time.Millisecond) // writes under way may land
	before := size()
	time.Sleep(500 * time.Millisecond) // an absence: nothing to await
	if after := size(); after != before {
		t.Fatalf("members of the frozen tree ran: the log grew %d → %d bytes", before, after)
	}
	began := time.Now()
	s, err := cl.Stop(ctx, "runaway")
	if err != nil {
		t.Fatal(err)
	}
	if ls := s.LastStop; ls == nil || ls.Signalled != 0 || ls.Killed == 0 || time.Since(began) > 15*time.Second {
		t.Fatalf("stop of the frozen tree: %+v in %v; want it terminated at once", ls, time.Since(began))
	}
	t.Logf("frozen past the limit of 6, reason %q; stopped in %v: %+v", s.Reason, time.Since(began), *s.LastStop)
	if res, err := cl.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v %+v", err, res)
	}
	d.Wait()
}

// winDir makes a directory for one test's configuration and state (not
// t.TempDir: under wine its RemoveAll can fail on files a just-ended
// process had open, which would fail the test for a cleanup detail).
func winDir(t *testing.T) string {
	dir, err := os.MkdirTemp("", "corral-win-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// startWinDaemon writes toml to dir/corral.toml and starts corral's daemon
// on it with stdin, keeping its stderr; it is killed at cleanup.
func startWinDaemon(t *testing.T, dir, toml string, stdin io.Reader) (*exec.Cmd, *lockedWriter, *client.Client) {
	exe, _ := os.Executable()
	cfg := filepath.Join(dir, "corral.toml")
	if err := os.WriteFile(cfg, []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
	d := exec.Command(exe, "daemon", "-c", cfg)
	d.Env = append(os.Environ(), asCorral+"=1")
	stderr := &lockedWriter{w: &bytes.Buffer{}}
	d.Stderr, d.Stdin = stderr, stdin
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Process.Kill(); d.Wait() })
	return d, stderr, client.New(ipc.Path(filepath.Join(dir, ".corral")))
}

// lockedWriter collects a child's stderr for a failure report.
type lockedWriter struct {
	mu sync.Mutex // guards w
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (l *lockedWriter) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.String()
}

// crashReport is the start of a Go crash in a child's stderr (its reason
// and the crashing goroutine), or the tail when there is none.
func crashReport(s string) string {
	for _, mark := range []string{"Exception 0x", "fatal error:", "panic:", "unexpected signal"} {
		if i := strings.Index(s, mark); i >= 0 {
			return s[i:min(len(s), i+4000)]
		}
	}
	return tail(s, 2000)
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// winAliveHandle says whether the started command's process still runs.
func winAliveHandle(c *exec.Cmd) bool {
	st, err := procinfo.ReadStat(c.Process.Pid)
	return err == nil && !st.Zombie()
}
