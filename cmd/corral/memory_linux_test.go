package main

import (
	"context"
	crand "crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/corral-sh/corral/client"
	"github.com/corral-sh/corral/internal/journal"
	"github.com/corral-sh/corral/internal/procinfo"
	"github.com/corral-sh/corral/internal/statedir"
	"github.com/corral-sh/corral/internal/testproc"
)

func identitiesOf(t *testing.T, pids []int) []identity {
	t.Helper()
	var out []identity
	for _, pid := range pids {
		if st, err := procinfo.ReadStat(pid); err == nil {
			out = append(out, identity{pid, st.StartTicks})
		}
	}
	return out
}

// aliveOf counts, from /proc, which of ids still exist (by pid and start
// time, so a reused pid is never counted; zombies included: a pid still
// taken).
func aliveOf(ids []identity) []int {
	var out []int
	for _, id := range ids {
		if st, err := procinfo.ReadStat(id.pid); err == nil && st.StartTicks == id.start {
			out = append(out, id.pid)
		}
	}
	return out
}

// goneWithin waits until none of ids is in the process table any more (a
// killed process's parent may take a moment to reap it; the daemon answers
// meanwhile, its service waits) and returns those still there.
func goneWithin(ids []identity, limit time.Duration) []int {
	deadline := time.Now().Add(limit)
	for {
		left := aliveOf(ids)
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// crashBoth runs the webui service, then SIGKILLs daemon and keeper, so
// only the next start can find the tree. It returns the tree's processes.
func crashBoth(t *testing.T, e *env, c string) ([]string, []identity) {
	t.Helper()
	d, _ := e.foreground("--containment", c)
	e.must("ensure", "webui")
	ids := e.instances()
	tree := identitiesOf(t, carriersOf(ids))
	if len(tree) < testproc.WebUISize {
		t.Fatalf("only %d processes in the tree", len(tree))
	}
	keeper := keeperOf(t, d.Process.Pid)
	syscall.Kill(keeper, syscall.SIGSTOP)
	d.Process.Signal(syscall.SIGKILL)
	syscall.Kill(keeper, syscall.SIGKILL)
	d.Wait()
	reapLikeInit(t, tree)
	t.Cleanup(func() {
		for _, pid := range aliveOf(tree) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	return ids, tree
}

// reapLikeInit reaps the tree's processes that become zombie children of
// the test process, as an init does. Once a test of this binary has made
// it a child subreaper (proctree does, for the process-group tier), the
// orphans of a killed daemon come to it, and a parent that never reaps them
// would hold the next daemon in its (bounded) wait for them: the case
// TestReapZombieWaitIsBoundedAndSaid covers, not this one.
func reapLikeInit(t *testing.T, tree []identity) {
	ch := make(chan os.Signal, 16)
	signal.Notify(ch, syscall.SIGCHLD)
	done := make(chan struct{})
	t.Cleanup(func() { signal.Stop(ch); close(done) })
	reap := func() {
		for _, id := range tree {
			if st, err := procinfo.ReadStat(id.pid); err == nil && st.Zombie() && st.PPID == os.Getpid() && st.StartTicks == id.start {
				var ws syscall.WaitStatus
				syscall.Wait4(id.pid, &ws, syscall.WNOHANG, nil)
			}
		}
	}
	go func() {
		for {
			select {
			case <-ch:
				reap()
			case <-done:
				return
			}
		}
	}()
}

// The journal is not the only memory: whatever happened to it, the next
// daemon finds the old tree (by its cgroup under corral/KEY, by its
// members' CORRAL_STATE) and reaps it before anything starts, so there are
// never two instances side by side.
func TestE2EDamagedJournalHidesNoTree(t *testing.T) {
	damages := []struct {
		name string
		do   func(t *testing.T, path string, instance string)
		kept bool // a damaged journal is kept aside
	}{
		{"truncated inside the spawn record", func(t *testing.T, path, instance string) {
			b, _ := os.ReadFile(path)
			i := strings.Index(string(b), `"instance":"`+instance+`"`)
			if i < 0 {
				t.Fatalf("no spawn record of %s", instance)
			}
			os.WriteFile(path, b[:i], 0o600)
		}, false},
		{"random bytes", func(t *testing.T, path, _ string) {
			b := make([]byte, 8192)
			crand.Read(b)
			os.WriteFile(path, b, 0o600)
		}, true},
		{"NULs", func(t *testing.T, path, _ string) { os.WriteFile(path, make([]byte, 8192), 0o600) }, true},
		{"emptied", func(t *testing.T, path, _ string) { os.WriteFile(path, nil, 0o600) }, false},
		{"deleted", func(t *testing.T, path, _ string) { os.Remove(path) }, false},
		{"a directory", func(t *testing.T, path, _ string) { os.Remove(path); os.Mkdir(path, 0o700) }, false},
	}
	containments(t, func(t *testing.T, c string) {
		for _, dmg := range damages {
			t.Run(strings.ReplaceAll(dmg.name, " ", "_"), func(t *testing.T) {
				e := newEnv(t, webuiTOML(freePort(t), ""))
				ids, tree := crashBoth(t, e, c)
				state := filepath.Join(e.dir, ".corral")
				jpath := filepath.Join(state, journal.FileName)
				dmg.do(t, jpath, ids[0])

				// Negative control: the journal alone no longer knows the
				// tree, which is alive: a daemon that trusts only it starts a
				// second instance beside it.
				events, _, _ := journal.ReadFile(jpath)
				for _, in := range journal.Live(events) {
					if in.ID == ids[0] {
						t.Fatalf("the damaged journal still lists %s: the control shows nothing", ids[0])
					}
				}
				if n := len(aliveOf(tree)); n != len(tree) {
					t.Fatalf("only %d of %d processes alive before the next start", n, len(tree))
				}

				if dmg.name == "a directory" {
					out, code := e.corral("daemon", "--containment", c)
					if code == 0 || !strings.Contains(out, "the journal cannot be written") {
						t.Fatalf("daemon with a directory as its journal exited %d:\n%s", code, out)
					}
					if left := goneWithin(tree, 10*time.Second); len(left) > 0 {
						t.Fatalf("refused to start, and left the old tree running: %v\n%s", left, out)
					}
					return
				}
				e.foreground("--containment", c)
				if left := goneWithin(tree, 10*time.Second); len(left) > 0 {
					t.Fatalf("the old tree survives the next start: %v", left)
				}
				var found bool
				var kept string
				e.client().Events(context.Background(), 0, false, func(ev client.Event) error {
					if ev.Kind == "reap" && ev.Instance == ids[0] && ev.Fields["unjournaled"] == "true" && ev.Fields["killed"] != "0" {
						found = true
					}
					if ev.Kind == "torn" && ev.Fields["kept"] != "" {
						kept = ev.Fields["kept"]
					}
					return nil
				})
				if !found {
					t.Fatal("no reap event says the tree was found without the journal")
				}
				if dmg.kept {
					if kept == "" {
						t.Fatal("the damaged journal was not reported as kept aside")
					}
					if _, err := os.Stat(kept); err != nil {
						t.Fatalf("kept aside as %s, which is missing: %v", kept, err)
					}
				}
				e.must("ensure", "webui")
				now := e.inspect("webui")
				for _, old := range ids {
					if now.Instance == old {
						t.Fatalf("the service runs its old instance %s", old)
					}
				}
				if got := len(aliveOf(tree)); got != 0 {
					t.Fatalf("%d old processes beside the new instance", got)
				}
			})
		}
	})
}

// 60,000 stale spawn records (instances long gone) cost what the one live
// leftover costs: the daemon answers at once and that leftover is reaped;
// the stale records are dropped from the journal.
func TestE2EManyStaleRecordsDoNotHideOrDelay(t *testing.T) {
	containments(t, func(t *testing.T, c string) {
		e := newEnv(t, webuiTOML(freePort(t), "autostart = false\n"))
		ids, tree := crashBoth(t, e, c)
		jpath := filepath.Join(e.dir, ".corral", journal.FileName)
		real, _ := os.ReadFile(jpath)
		var b strings.Builder
		stale := func(i int) {
			rec, _ := json.Marshal(journal.Event{Seq: uint64(i), Kind: journal.Spawn, Service: "webui",
				Instance: fmt.Sprintf("stale%019d", i), PID: 4000000 + i%100000, Start: 1, Boot: procinfo.BootID(),
				Cgroup: fmt.Sprintf("/sys/fs/cgroup/corral/gone-%d", i), Cmdline: []string{"gone"}})
			b.Write(rec)
			b.WriteByte('\n')
		}
		stale(1)
		b.Write(real) // the real leftover's record is at line 2
		for i := 2; i <= 60000; i++ {
			stale(i)
		}
		os.WriteFile(jpath, []byte(b.String()), 0o600)

		began := time.Now()
		e.foreground("--containment", c)
		took := time.Since(began)
		t.Logf("%s: the daemon answered %v after its start, with 60,000 stale records (target < 1 s; BenchmarkRecover60kStaleRecords measures the records alone)", c, took)
		// The bound catches the regression this test was written for (the
		// daemon waiting for a slow parent's zombies: 2.5–14 s), not the
		// target, which the log line reports.
		if limit := 5 * time.Second * raceSlowdown; took > limit {
			t.Fatalf("the daemon took %v to answer (limit %v)", took, limit)
		}
		if left := goneWithin(tree, 10*time.Second); len(left) > 0 {
			t.Fatalf("the real leftover survives: %v", left)
		}
		events, _, _ := journal.ReadFile(jpath)
		if live := journal.Live(events); len(live) != 0 {
			t.Fatalf("%d records still count as alive after the reap", len(live))
		}
		var summary bool
		e.client().Events(context.Background(), 0, false, func(ev client.Event) error {
			summary = summary || (ev.Kind == "reap" && strings.Contains(ev.Message, "60000 journal records"))
			if ev.Kind == "daemon" && strings.Contains(ev.Message, "reaped") {
				t.Logf("%s: %s", c, ev.Message)
			}
			return nil
		})
		if !summary {
			t.Fatal("no event sums up the stale records")
		}
		_ = ids
	})
}

// A daemon never trusts a state directory someone else could write to, nor
// writes through a symlink planted in one.
func TestE2EHostileStateDirIsRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the attack is a second user planting files for root's daemon")
	}
	const nobody = 65534
	cases := []struct {
		name  string
		plant func(t *testing.T, state, victim string)
		want  string
	}{
		{"state dir owned by another user", func(t *testing.T, state, _ string) {
			os.Mkdir(state, 0o700)
			os.Chown(state, nobody, nobody)
		}, "is owned by uid 65534"},
		{"world-writable state dir", func(t *testing.T, state, _ string) {
			os.Mkdir(state, 0o700)
			os.Chmod(state, 0o777)
		}, "writable by group or others"},
		{"state dir is a symlink", func(t *testing.T, state, victim string) {
			os.Symlink(filepath.Dir(victim), state)
		}, "is a symlink"},
		{"lock is a symlink", func(t *testing.T, state, victim string) {
			os.Mkdir(state, 0o700)
			os.Symlink(victim, filepath.Join(state, "daemon.lock"))
		}, "daemon.lock is a symlink"},
		{"journal is a symlink", func(t *testing.T, state, victim string) {
			os.Mkdir(state, 0o700)
			os.Symlink(victim, filepath.Join(state, journal.FileName))
		}, "a symlink stands in the path"},
		{"parent owned by another user", func(t *testing.T, state, _ string) {
			os.Chown(filepath.Dir(state), nobody, nobody)
		}, "a parent of the state directory"},
	}
	for _, tc := range cases {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
			e := newEnv(t, "[services.a]\ncommand = [\"/bin/sleep\", \"100\"]\nautostart = false\n")
			victimDir := t.TempDir()
			victim := filepath.Join(victimDir, "precious")
			os.WriteFile(victim, []byte("root's data\n"), 0o600)
			victimMode := statMode(t, victimDir)
			state := filepath.Join(e.dir, ".corral")
			tc.plant(t, state, victim)
			// Negative control: the naive opens corral used would have
			// written through the planted paths (checked on a copy).
			out, code := e.corral("daemon")
			if code == 0 || !strings.Contains(out, tc.want) {
				t.Fatalf("daemon exited %d, want a refusal saying %q:\n%s", code, tc.want, out)
			}
			if b, _ := os.ReadFile(victim); string(b) != "root's data\n" {
				t.Fatalf("the victim file was written: %q", b)
			}
			if m := statMode(t, victimDir); m != victimMode {
				t.Fatalf("the victim directory's mode changed: %v → %v", victimMode, m)
			}
		})
	}
	// A symlink at a service's log file: the daemon runs, the output stays in
	// memory, and the file it points to is never written.
	t.Run("log_file_is_a_symlink", func(t *testing.T) {
		e := newEnv(t, "[services.a]\nshell = \"echo secret-output; exec sleep 100\"\nautostart = false\n")
		victim := filepath.Join(t.TempDir(), "precious")
		os.WriteFile(victim, []byte("root's data\n"), 0o600)
		logs := filepath.Join(e.dir, ".corral", "logs")
		os.MkdirAll(logs, 0o700)
		os.Chmod(filepath.Dir(logs), 0o700)
		os.Symlink(victim, filepath.Join(logs, "a.log"))
		e.foreground()
		e.must("start", "a")
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(e.must("logs", "a"), "secret-output") {
			if time.Now().After(deadline) {
				t.Fatal("the output is not kept in memory")
			}
			time.Sleep(10 * time.Millisecond)
		}
		if b, _ := os.ReadFile(victim); string(b) != "root's data\n" {
			t.Fatalf("the log was written through the symlink: %q", b)
		}
		if out := e.must("events"); !strings.Contains(out, "output kept in memory only") || !strings.Contains(out, "a.log is a symlink") {
			t.Fatalf("no event says why there is no log file:\n%s", out)
		}
	})
	// The control: what the daemon would do without the checks. A plain
	// open of the planted lock writes through to the victim.
	t.Run("control", func(t *testing.T) {
		dir := t.TempDir()
		victim := filepath.Join(dir, "precious")
		os.WriteFile(victim, []byte("root's data\n"), 0o600)
		os.Symlink(victim, filepath.Join(dir, "daemon.lock"))
		os.WriteFile(filepath.Join(dir, "daemon.lock"), []byte("1234\n"), 0o600)
		if b, _ := os.ReadFile(victim); string(b) == "root's data\n" {
			t.Fatal("a plain write did not follow the symlink: the control shows nothing")
		}
		if _, err := statedir.OpenFile(dir, "daemon.lock", os.O_WRONLY|os.O_TRUNC, 0o600); err == nil {
			t.Fatal("statedir.OpenFile followed the symlink")
		}
	})
}

func statMode(t *testing.T, p string) os.FileMode {
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode()
}

// A daemonizing program that rewrites its environment (setproctitle, as
// nginx and redis do) leaves no marker, and in the process-group tier its
// setsid takes it out of the tree's group too: only its ancestry says it
// is ours. It is re-parented to its tree's shim (the per-tree subreaper),
// so the tree itself keeps it as a member: the shutdown stops it with its
// service (no stray hunt needed: no ESCAPED event), and "verified" is
// printed only once it is gone.
func TestE2EEscapedDaemonIsFoundByAncestryAtShutdown(t *testing.T) {
	pidfile := filepath.Join(t.TempDir(), "hidden.pid")
	e := newEnv(t, fmt.Sprintf(`
[services.hidden]
shell = "{exe} hiddendaemon %s; CORRAL_TESTPROC=sleep exec {exe} sleep"
env = { CORRAL_TESTPROC = "hiddendaemon", GORACE = "atexit_sleep_ms=0" }
`, pidfile))
	d, out := e.foreground("--containment", "pgroup")
	var pid int
	deadline := time.Now().Add(20 * time.Second)
	for {
		b, _ := os.ReadFile(pidfile)
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && n > 0 {
			pid = n
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the hidden daemon never wrote its pid:\n%s", out)
		}
		time.Sleep(5 * time.Millisecond)
	}
	hidden := identitiesOf(t, []int{pid})
	t.Cleanup(func() {
		for _, p := range aliveOf(hidden) {
			syscall.Kill(p, syscall.SIGKILL)
		}
	})
	// Its launcher exits once it is ready: then its tree's shim, a child of
	// corral, is its parent.
	for {
		st, err := procinfo.ReadStat(pid)
		if err == nil && st.PPID != d.Process.Pid {
			if sh, err := procinfo.ReadStat(st.PPID); err == nil && sh.PPID == d.Process.Pid {
				if argv, _ := procinfo.Cmdline(sh.PID); len(argv) > 0 && argv[0] == "corral-shim" {
					break
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the hidden daemon's parent is %d (err %v), not a shim of corral (%d)", st.PPID, err, d.Process.Pid)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Negative control: the marker scan the verification relied on does not
	// see it (its environment is gone), so without its ancestry a shutdown
	// would print "verified" with it alive.
	for _, id := range e.instances() {
		for _, p := range testproc.Carriers(id) {
			if p == pid {
				t.Fatal("the hidden daemon still carries its marker: the control shows nothing")
			}
		}
	}
	if m := procinfo.ReadMarkers(pid); m.Instance != "" {
		t.Fatalf("markers still readable: %+v", m)
	}
	res, code := e.corral("shutdown")
	if left := aliveOf(hidden); len(left) > 0 {
		t.Fatalf("the hidden daemon survives the shutdown (exit %d):\n%s", code, res)
	}
	if code != 0 || !strings.Contains(res, "verified: 0 supervised processes remain") {
		t.Fatalf("shutdown exited %d:\n%s", code, res)
	}
	d.Wait()
	// Its tree stopped it, through the shim's ancestry: the shutdown's hunt
	// for strays re-parented to corral found nothing.
	if ev := readEvents(t, e); strings.Contains(ev, "ESCAPED") {
		t.Fatalf("the hidden daemon escaped its tree; the journal:\n%s", ev)
	}
}

// readEvents reads the journal on disk (the daemon is gone).
func readEvents(t *testing.T, e *env) string {
	b, _ := os.ReadFile(filepath.Join(e.dir, ".corral", journal.FileName))
	return string(b)
}
