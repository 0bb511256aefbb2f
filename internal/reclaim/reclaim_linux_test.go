package reclaim

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/corral-sh/corral/internal/cgroupv2"
	"github.com/corral-sh/corral/internal/journal"
	"github.com/corral-sh/corral/internal/procinfo"
	"github.com/corral-sh/corral/internal/testproc"
	"github.com/corral-sh/corral/proctree"
)

func TestMain(m *testing.M) {
	testproc.Main()
	os.Exit(m.Run())
}

// marked starts a sleep fixture carrying the markers an instance's members
// carry. Its parent is a slowparent fixture, which reaps it only when told
// (close): an init that reaps slowly, as in a container whose PID 1 is a
// shell.
func marked(t *testing.T, instance, service, key string) (child int, st procinfo.Stat, reap func()) {
	t.Helper()
	cmd := testproc.Command("slowparent", procinfo.MarkerVar+"="+instance, procinfo.ServiceVar+"="+service, procinfo.StateVar+"="+key)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	r := bufio.NewReader(stdout)
	line, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("slowparent: %v", err)
	}
	child, _ = strconv.Atoi(strings.TrimSpace(line))
	t.Cleanup(func() { syscall.Kill(child, syscall.SIGKILL) })
	// Wait until exec has replaced the environment the marker is read from.
	deadline := time.Now().Add(10 * time.Second)
	for procinfo.ReadMarkers(child).Instance != instance {
		if time.Now().After(deadline) {
			t.Fatal("the fixture never carried its marker")
		}
		time.Sleep(time.Millisecond)
	}
	st, err = procinfo.ReadStat(child)
	if err != nil || st.PPID != cmd.Process.Pid {
		t.Fatalf("child %d: %v, parent %d, want %d", child, err, st.PPID, cmd.Process.Pid)
	}
	if procinfo.ReadMarkers(cmd.Process.Pid).Instance != "" {
		t.Fatal("the slow parent carries the markers: it would be reaped with its child")
	}
	return child, st, func() {
		stdin.Close()
		if l, _ := r.ReadString('\n'); strings.TrimSpace(l) != "reaped" {
			t.Errorf("the slow parent did not reap its child (it said %q)", l)
		}
	}
}

func waitEvent(t *testing.T, ch <-chan journal.Event, substr string) journal.Event {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case e := <-ch:
			if strings.Contains(e.Message, substr) {
				return e
			}
		case <-timeout:
			t.Fatalf("no event saying %q", substr)
		}
	}
}

// A reap is finished only when the processes are gone from the process
// table: a killed leader that its parent has not reaped yet keeps its pid,
// and a program that checks it ("Already running on PID ...") would refuse
// to start. The reap waits for it, says so, and returns once it is reaped.
func TestReapWaitsForAZombieItsParentReapsLate(t *testing.T) {
	key := "state-test" + fmt.Sprint(os.Getpid())
	pid, st, reap := marked(t, "zombie0000000000000000a1", "api", key)
	in := &journal.Instance{ID: "zombie0000000000000000a1", Service: "api", PID: pid, Start: st.StartTicks, Boot: procinfo.BootID()}
	bus := journal.NewBus(100, nil)
	_, ch, cancel := bus.Subscribe(0)
	defer cancel()
	done := make(chan []Report, 1)
	go func() {
		done <- Reap(context.Background(), []*journal.Instance{in}, Options{Bus: bus, ZombieWait: time.Minute})
	}()

	e := waitEvent(t, ch, "to be reaped by")
	if !strings.Contains(e.Message, fmt.Sprintf("pid %d", pid)) || !strings.Contains(e.Message, "their parent (pid ") {
		t.Fatalf("the waiting event does not name the zombie and its parent: %s", e.Message)
	}
	// Negative control: the leader is dead, yet its pid is still taken.
	// A reap that ended at the kill would let the service start now.
	if z, err := procinfo.ReadStat(pid); err != nil || !z.Zombie() {
		t.Fatalf("the leader is not a zombie (err %v, state %q): the control shows nothing", err, z.State)
	}
	select {
	case rs := <-done:
		t.Fatalf("the reap ended while its leader was still a zombie: %+v", rs)
	default:
	}
	if procinfo.ReadMarkers(os.Getpid()).Instance != "" {
		t.Fatal("unexpected marker on the test process")
	}
	reap() // the slow parent reaps at last
	var rs []Report
	select {
	case rs = <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("the reap did not end once the zombie was reaped")
	}
	if len(rs) != 1 || rs[0].Error != "" || len(rs[0].Zombies) != 0 || rs[0].Killed < 1 {
		t.Fatalf("report %+v", rs)
	}
}

// The wait is bounded, and says which pids were still unreaped, by whom.
func TestReapZombieWaitIsBoundedAndSaid(t *testing.T) {
	key := "state-test" + fmt.Sprint(os.Getpid())
	pid, st, _ := marked(t, "zombie0000000000000000b2", "api", key)
	in := &journal.Instance{ID: "zombie0000000000000000b2", Service: "api", PID: pid, Start: st.StartTicks, Boot: procinfo.BootID()}
	bus := journal.NewBus(100, nil)
	rs := Reap(context.Background(), []*journal.Instance{in}, Options{Bus: bus, ZombieWait: 300 * time.Millisecond})
	if len(rs) != 1 || len(rs[0].Zombies) != 1 || rs[0].Zombies[0] != pid {
		t.Fatalf("report %+v", rs)
	}
	var said bool
	for _, e := range bus.Recent(0) {
		said = said || (e.Kind == journal.Reaped && strings.Contains(e.Message, "still unreaped"))
	}
	if !said {
		t.Fatalf("no event says the zombie was left unreaped: %+v", bus.Recent(0))
	}
}

// Discover finds a tree by its members' CORRAL_STATE, with no journal at
// all, and never takes another state directory's tree (or a process
// without markers) for its own.
func TestDiscoverByMarkers(t *testing.T) {
	key := "state-mine" + fmt.Sprint(os.Getpid())
	marked(t, "mine000000000000000000c3", "webui", key)
	other, _, _ := marked(t, "other00000000000000000d4", "webui", "state-someone-else")
	found, err := Discover(key)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, in := range found {
		ids = append(ids, in.ID)
		if in.ID == "other00000000000000000d4" {
			t.Fatalf("another state directory's tree was taken for ours: %+v", in)
		}
	}
	if len(found) != 1 || found[0].ID != "mine000000000000000000c3" || found[0].Service != "webui" {
		t.Fatalf("found %v", ids)
	}
	// The control: the other tree is marked too; only the key tells them apart.
	if procinfo.ReadMarkers(other).Instance == "" {
		t.Fatal("the other tree carries no marker: the control shows nothing")
	}
}

// In the cgroup tier a tree is found by its group under corral/KEY even when
// its members dropped every marker (a rewritten environment), wherever the
// earlier daemon's own cgroup was.
func TestDiscoverByCgroup(t *testing.T) {
	info := cgroupv2.Detect()
	if _, _, err := proctree.Resolve(proctree.Options{Containment: proctree.ForceCgroup}); err != nil {
		t.Skipf("cgroup tier unavailable (euid %d): %v", os.Geteuid(), err)
	}
	key := "state-cg" + fmt.Sprint(os.Getpid())
	parent, err := proctree.DefaultCgroupParent()
	if err != nil {
		t.Skip(err)
	}
	// Somewhere else than this process's own corral group: another session.
	elsewhere := filepath.Join(info.Mount, fmt.Sprintf("corral-test-%d", os.Getpid()), "corral", key)
	for _, p := range []string{filepath.Join(parent, key), elsewhere} {
		if err := cgroupv2.Probe(p); err != nil {
			t.Skip(err)
		}
	}
	t.Cleanup(func() {
		os.Remove(elsewhere)
		os.Remove(filepath.Dir(elsewhere))
		os.Remove(filepath.Dir(filepath.Dir(elsewhere)))
		os.Remove(filepath.Join(parent, key))
	})
	var trees []*proctree.Tree
	for i, p := range []string{filepath.Join(parent, key), elsewhere} {
		cmd := exec.Command("/bin/sh", "-c", "exec env -i /bin/sleep 60") // no marker survives env -i
		tr, err := proctree.Start(cmd, proctree.Options{Containment: proctree.ForceCgroup, CgroupParent: p,
			Service: "svc" + fmt.Sprint(i), Instance: fmt.Sprintf("cgtree%018d", i)})
		if err != nil {
			t.Fatal(err)
		}
		trees = append(trees, tr)
		t.Cleanup(func() { tr.Kill(context.Background()); <-tr.Done() })
	}
	// Wait for env -i to exec: then no member carries a marker.
	deadline := time.Now().Add(10 * time.Second)
	for _, tr := range trees {
		for {
			ms, _ := tr.Members()
			if len(ms) == 1 && procinfo.ReadMarkers(ms[0].PID).Instance == "" && strings.Contains(strings.Join(ms[0].Cmdline, " "), "sleep") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the tree never dropped its markers: %+v", ms)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	found, err := Discover(key)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, in := range found {
		got[in.ID] = in.Service
		if in.Cgroup == "" {
			t.Fatalf("found without its group: %+v", in)
		}
	}
	if got["cgtree000000000000000000"] != "svc0" || got["cgtree000000000000000001"] != "svc1" {
		t.Fatalf("found %v", got)
	}
	// And they are reaped by what was found.
	rs := Reap(context.Background(), found, Options{})
	for _, r := range rs {
		if r.Error != "" || r.Killed != 1 {
			t.Fatalf("reap %+v", r)
		}
	}
	for _, tr := range trees {
		select {
		case <-tr.Done():
		case <-time.After(10 * time.Second):
			t.Fatal("a discovered tree survived its reap")
		}
	}
}

// A daemon's start does not wait: the killed processes still unreaped are
// handed back (Pending) for the service's start to wait on (WaitGone).
func TestReapCanDeferTheZombieWait(t *testing.T) {
	key := "state-test" + fmt.Sprint(os.Getpid())
	pid, st, reap := marked(t, "zombie0000000000000000e5", "api", key)
	in := &journal.Instance{ID: "zombie0000000000000000e5", Service: "api", PID: pid, Start: st.StartTicks, Boot: procinfo.BootID()}
	rs := Reap(context.Background(), []*journal.Instance{in}, Options{DeferZombies: true})
	if len(rs) != 1 || len(rs[0].Pending) != 1 || rs[0].Pending[0].PID != pid {
		t.Fatalf("report %+v", rs)
	}
	done := make(chan []int, 1)
	go func() { done <- WaitGone(context.Background(), rs[0].Pending, time.Minute, func([]int) {}) }()
	select {
	case left := <-done:
		t.Fatalf("WaitGone returned %v while the zombie was unreaped", left)
	case <-time.After(100 * time.Millisecond):
	}
	reap()
	select {
	case left := <-done:
		if len(left) != 0 {
			t.Fatalf("left %v", left)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("WaitGone did not return once the zombie was reaped")
	}
}

// In the process-group tier a daemon that setsids and overwrites its
// environment (nginx, redis) carries no marker; only its tree's shim names
// the instance. A keeper or a next daemon that counted marked processes
// alone took such an instance for gone and left it running: found by the
// real nginx and redis after a SIGKILL of a non-root daemon.
func TestReapFindsAShimsHiddenDaemon(t *testing.T) {
	key := "state-shim" + fmt.Sprint(os.Getpid())
	dir := t.TempDir()
	pidfile := filepath.Join(dir, "daemon.pid")
	cmd := testproc.Command("hiddendaemon", pidfile)
	cmd.Env = append(cmd.Env, procinfo.StateVar+"="+key)
	tr, err := proctree.Start(cmd, proctree.Options{Containment: proctree.ForcePgroup, Service: "svc"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Kill(context.Background()) })
	<-tr.Exited() // the launcher exits once its daemon runs, as nginx's does
	b, err := os.ReadFile(pidfile)
	if err != nil {
		t.Fatal(err)
	}
	hidden, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	st, err := procinfo.ReadStat(hidden)
	if err != nil {
		t.Fatal(err)
	}
	// The control: no marker is left to find it by.
	snap, _ := procinfo.Snapshot()
	if m := procinfo.ReadMarkers(hidden); m.Instance != "" {
		t.Fatalf("the daemon still carries marker %q: the test would prove nothing", m.Instance)
	}
	if n := len(procinfo.CarriersIn(snap, func(id string) bool { return id == tr.ID() })[tr.ID()]); n != 0 {
		t.Fatalf("%d marked processes: the marker-only count would have found it too", n)
	}
	live := []*journal.Instance{{ID: tr.ID(), Service: "svc", Boot: procinfo.BootID()}}
	if Gone(live)[tr.ID()] {
		t.Fatal("the instance counts as gone while its shim holds its daemon")
	}
	found, err := Discover(key)
	if err != nil || len(found) != 1 || found[0].ID != tr.ID() {
		t.Fatalf("discovered %v (%v), want the instance %s by its shim", found, err, tr.ID())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	reps := Reap(ctx, live, Options{})
	if len(reps) != 1 || reps[0].Error != "" || reps[0].Killed == 0 {
		t.Fatalf("reap: %+v", reps)
	}
	if now, err := procinfo.ReadStat(hidden); err == nil && now.StartTicks == st.StartTicks && !now.Zombie() {
		t.Fatalf("the hidden daemon %d survived the reap", hidden)
	}
}
