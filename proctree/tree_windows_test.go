package proctree_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"

	"github.com/corral-sh/corral/internal/procinfo"
	"github.com/corral-sh/corral/internal/testproc"
	"github.com/corral-sh/corral/proctree"
)

// pin pins the pids that are still there (pinAll, lenient).
func pin(t *testing.T, pids []int) pinSet {
	var live []int
	for _, pid := range pids {
		if h, err := windows.OpenProcess(windows.PROCESS_QUERY_LIMITED_INFORMATION, false, uint32(pid)); err == nil {
			windows.CloseHandle(h)
			live = append(live, pid)
		}
	}
	return pinAll(t, live)
}

func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// descendants lists live processes whose parent chain leads to root (on
// Windows a dead parent's children keep its pid as their parent).
func descendants(root int) []int {
	snap, err := windows.CreateToolhelp32Snapshot(windows.TH32CS_SNAPPROCESS, 0)
	if err != nil {
		return nil
	}
	defer windows.CloseHandle(snap)
	parent := map[int]int{}
	var pe windows.ProcessEntry32
	pe.Size = uint32(unsafe.Sizeof(pe))
	for err = windows.Process32First(snap, &pe); err == nil; err = windows.Process32Next(snap, &pe) {
		parent[int(pe.ProcessID)] = int(pe.ParentProcessID)
	}
	var out []int
	for pid := range parent {
		for p, hops := parent[pid], 0; hops < 16 && p != 0; p, hops = parent[p], hops+1 {
			if p == root {
				out = append(out, pid)
				break
			}
		}
	}
	return out
}

// startHolder runs a fixture that starts `tree 1 2` (3 processes) and
// returns the holder and the tree's leader pid.
func startHolder(t *testing.T, fixture string) (*exec.Cmd, int) {
	cmd := testproc.Command(fixture)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	var leader int
	if _, err := fmt.Fscanf(out, "leader %d\n", &leader); err != nil {
		cmd.Process.Kill()
		t.Fatalf("%s did not report its tree: %v", fixture, err)
	}
	return cmd, leader
}

// Tethered: when the process holding a tree's job dies (TerminateProcess,
// as a crash or a task manager kill does), the kernel closes the job's last
// handle and kills every member.
func TestWindowsHolderDeathKillsTheTree(t *testing.T) {
	holder, leader := startHolder(t, "contain")
	// Two children, and the conhost.exe of the tree's console.
	waitFor(t, 60*time.Second, "the tree to form", func() bool { return len(descendants(leader)) >= 2 })
	tree := pin(t, append(descendants(leader), leader))
	holder.Process.Kill() // TerminateProcess
	holder.Wait()
	waitFor(t, 2*time.Second, "every member to die with its holder", func() bool { return tree.alive() == 0 })
}

// Negative control: the same tree without a job outlives its holder.
func TestWindowsNegativeControlHolderDeathWithoutJob(t *testing.T) {
	holder, leader := startHolder(t, "uncontain")
	waitFor(t, 60*time.Second, "the tree to form", func() bool { return len(descendants(leader)) == 2 })
	tree := pin(t, append(descendants(leader), leader))
	holder.Process.Kill()
	holder.Wait()
	time.Sleep(500 * time.Millisecond) // an absence: nothing to await
	if n := tree.alive(); n != len(tree) {
		t.Fatalf("without a job %d of %d outlived the holder; the control shows nothing", n, len(tree))
	}
}

// gracefulLog lists the pids for which the graceful fixtures noted what.
func gracefulLog(prefix string, what string) map[string]bool {
	files, _ := filepath.Glob(prefix + ".*." + what)
	out := map[string]bool{}
	for _, f := range files {
		out[strings.TrimSuffix(strings.TrimPrefix(f, prefix+"."), "."+what)] = true
	}
	return out
}

// A stop reaches every member with a console control event on the tree's
// own console, and members that handle it exit cleanly within the grace
// period: nothing is terminated.
func TestWindowsStopIsGraceful(t *testing.T) {
	logPath := filepath.Join(tempDir(t), "graceful.log")
	tr, err := proctree.Start(testproc.Command("graceful", "-log", logPath, "2", "2"), proctree.Options{})
	if err != nil {
		t.Fatal(err)
	}
	const size = 1 + 2 + 4
	waitFor(t, 60*time.Second, "every member to install its handler", func() bool {
		return len(gracefulLog(logPath, "ready")) == size
	})
	hosts := consoleHosts(t, tr)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rep, err := tr.Stop(ctx, syscall.SIGTERM, 20*time.Second)
	if err != nil {
		t.Fatalf("stop: %v (%+v)", err, rep)
	}
	if stopped := gracefulLog(logPath, "stopped"); len(stopped) != size {
		t.Fatalf("%d of %d members saw the control event: %v (report %+v)", len(stopped), size, stopped, rep)
	}
	// CTRL_BREAK, or CTRL_C where the console has no CTRL_BREAK (wine).
	if (rep.Signal != "CTRL_BREAK" && rep.Signal != "CTRL_C") || rep.Signalled != size+hosts || rep.Exited != size+hosts || rep.Killed != 0 {
		t.Fatalf("report %+v: want %d+%d signalled by a console event, all exited, none killed", rep, size, hosts)
	}
	if st, _ := tr.ExitState(); st == nil || st.ExitCode() != 0 {
		t.Fatalf("leader exit state %v, want a clean exit", st)
	}
	t.Logf("graceful stop of %d members: %+v", size, rep)
}

// The WebUI chain: a .bat under cmd.exe running a program that handles the
// event. Every fixture process stops cleanly; cmd.exe, which asks
// "Terminate batch job (Y/N)?", ends with them or at the terminate.
func TestWindowsStopIsGracefulThroughCmd(t *testing.T) {
	logPath := filepath.Join(tempDir(t), "graceful.log")
	tr, err := proctree.Start(batCommand(t, "graceful", "-log", logPath, "1", "2"), proctree.Options{})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "every fixture to install its handler", func() bool {
		return len(gracefulLog(logPath, "ready")) == 3
	})
	hosts := consoleHosts(t, tr)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rep, err := tr.Stop(ctx, syscall.SIGTERM, 5*time.Second)
	if err != nil {
		t.Fatalf("stop: %v (%+v)", err, rep)
	}
	if stopped := gracefulLog(logPath, "stopped"); len(stopped) != 3 {
		t.Fatalf("%d of 3 fixture processes under cmd.exe saw the event (report %+v)", len(stopped), rep)
	}
	if rep.Signalled != 4+hosts || rep.Killed > 1+hosts {
		t.Fatalf("report %+v: want cmd.exe, 3 fixtures and %d console hosts signalled, at most cmd.exe and the hosts killed", rep, hosts)
	}
	t.Logf("graceful stop through cmd.exe: %+v", rep)
}

// Negative control: the event generated from the supervisor's own process,
// as a supervisor that shares its console would do it, reaches nothing in a
// tree with a console of its own (nor in any tree, when the supervisor runs
// without a console, as a background daemon does).
func TestWindowsNegativeControlCtrlFromSupervisor(t *testing.T) {
	logPath := filepath.Join(tempDir(t), "graceful.log")
	cmd := testproc.Command("graceful", "-log", logPath, "0", "0")
	cmd.SysProcAttr = &syscall.SysProcAttr{CreationFlags: windows.CREATE_NO_WINDOW | windows.CREATE_NEW_PROCESS_GROUP}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	waitFor(t, 60*time.Second, "the handler", func() bool { return len(gracefulLog(logPath, "ready")) == 1 })
	errBreak := windows.GenerateConsoleCtrlEvent(windows.CTRL_BREAK_EVENT, uint32(cmd.Process.Pid))
	errC := windows.GenerateConsoleCtrlEvent(windows.CTRL_C_EVENT, uint32(cmd.Process.Pid))
	time.Sleep(time.Second) // an absence: nothing to await
	if n := len(gracefulLog(logPath, "stopped")); n != 0 {
		t.Fatalf("an event from the supervisor's console reached the tree; the control shows nothing")
	}
	t.Logf("from the supervisor's console: CTRL_BREAK %v, CTRL_C %v; the fixture saw neither", errBreak, errC)
}

// consoleHosts counts the tree's conhost.exe: the hidden console a tree
// gets is served by a console host that is itself a member of the job.
func consoleHosts(t *testing.T, tr *proctree.Tree) int {
	ms, err := tr.Members()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, m := range ms {
		if len(m.Cmdline) > 0 && strings.EqualFold(filepath.Base(m.Cmdline[0]), "conhost.exe") {
			n++
		}
	}
	return n
}

// The kernel tells corral when a job empties (a completion-port message),
// so emptiness is not found by polling.
func TestWindowsJobEmptinessIsNotified(t *testing.T) {
	before := proctree.JobZeroMessages()
	tr, err := proctree.Start(testproc.Command("tree", "1", "2"), proctree.Options{})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "the tree to form", func() bool {
		ms, _ := tr.Members()
		return len(ms) >= 3
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := tr.Kill(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the job-emptied message", func() bool { return proctree.JobZeroMessages() > before })
}

// tickers returns which pids wrote to the ticker log, and how many lines.
func tickers(path string) (map[string]bool, int) {
	b, _ := os.ReadFile(path)
	pids := map[string]bool{}
	n := 0
	for _, l := range strings.Split(string(b), "\n") {
		if l != "" {
			pids[l] = true
			n++
		}
	}
	return pids, n
}

// startTickers runs `ticker 1 2` (3 processes that each write every 10 ms)
// and waits until all three write.
func startTickers(t *testing.T, start func(*exec.Cmd) error) string {
	logPath := filepath.Join(tempDir(t), "ticks.log")
	if err := start(testproc.Command("ticker", "-log", logPath, "1", "2")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "three tickers", func() bool { p, _ := tickers(logPath); return len(p) == 3 })
	return logPath
}

// runsAfter says which pids still write during d from now.
func runsAfter(path string, d time.Duration) map[string]bool {
	_, skip := tickers(path)
	time.Sleep(d) // observing an absence: nothing to await
	b, _ := os.ReadFile(path)
	out := map[string]bool{}
	for i, l := range strings.Split(string(b), "\n") {
		if i >= skip && l != "" {
			out[l] = true
		}
	}
	return out
}

// Freeze suspends every member of the job, not only the leader; Thaw lets
// them all run again.
func TestWindowsFreezeSuspendsEveryMember(t *testing.T) {
	var tr *proctree.Tree
	logPath := startTickers(t, func(cmd *exec.Cmd) (err error) {
		tr, err = proctree.Start(cmd, proctree.Options{})
		return err
	})
	t.Cleanup(func() { tr.Kill(context.Background()) })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := tr.Freeze(ctx); err != nil {
		t.Fatal(err)
	}
	runsAfter(logPath, 100*time.Millisecond) // writes already under way may land
	if ran := runsAfter(logPath, 500*time.Millisecond); len(ran) != 0 {
		t.Fatalf("%d members ran while frozen: %v", len(ran), ran)
	}
	if err := tr.Thaw(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "all three to run again", func() bool { return len(runsAfter(logPath, 100*time.Millisecond)) == 3 })
	// A frozen tree cannot act on a console event: its stop terminates it
	// at once instead of waiting out the grace period.
	if err := tr.Freeze(ctx); err != nil {
		t.Fatal(err)
	}
	rep, err := tr.Stop(ctx, syscall.SIGTERM, 20*time.Second)
	if err != nil || rep.Signalled != 0 || rep.Killed < 3 || rep.Duration > 10*time.Second {
		t.Fatalf("stop of a frozen tree: %+v %v; want all killed without waiting the grace", rep, err)
	}
}

// Negative control: suspending the leader alone (what a supervisor that
// knows one pid can do) leaves its children running.
func TestWindowsNegativeControlSuspendLeaderOnly(t *testing.T) {
	var cmd *exec.Cmd
	logPath := startTickers(t, func(c *exec.Cmd) error { cmd = c; return c.Start() })
	t.Cleanup(func() { cmd.Wait() }) // runs after the pinned tree's cleanup
	pin(t, append(descendants(cmd.Process.Pid), cmd.Process.Pid))
	h, err := windows.OpenProcess(windows.PROCESS_SUSPEND_RESUME, false, uint32(cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	defer windows.CloseHandle(h)
	suspend := windows.NewLazySystemDLL("ntdll.dll").NewProc("NtSuspendProcess")
	if r, _, _ := suspend.Call(uintptr(h)); r != 0 {
		t.Fatalf("NtSuspendProcess: %#x", r)
	}
	runsAfter(logPath, 100*time.Millisecond)
	if ran := runsAfter(logPath, 500*time.Millisecond); len(ran) != 2 || ran[fmt.Sprint(cmd.Process.Pid)] {
		t.Fatalf("with the leader suspended, %v ran; want its 2 children and not it", ran)
	}
}

// The helper attaches only to the process meant: a pid whose creation time
// differs (a dead member's pid handed to another process) is not used, and
// nothing on that process's console gets the event.
func TestWindowsCtrlHelperChecksIdentity(t *testing.T) {
	logPath := filepath.Join(tempDir(t), "graceful")
	cmd := testproc.Command("graceful", "-log", logPath, "0", "0")
	cmd.SysProcAttr = &syscall.SysProcAttr{CreationFlags: windows.CREATE_NO_WINDOW}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	waitFor(t, 60*time.Second, "the handler", func() bool { return len(gracefulLog(logPath, "ready")) == 1 })
	st, err := procinfo.ReadStat(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	if sent, err := proctree.SendConsoleCtrl(cmd.Process.Pid, st.StartTicks+1); err == nil {
		t.Fatalf("sent %s to a process by pid alone", sent)
	}
	time.Sleep(500 * time.Millisecond) // an absence: nothing to await
	if len(gracefulLog(logPath, "stopped")) != 0 {
		t.Fatal("a process that is not the one meant got the event")
	}
	sent, err := proctree.SendConsoleCtrl(cmd.Process.Pid, st.StartTicks)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the process meant to stop", func() bool { return len(gracefulLog(logPath, "stopped")) == 1 })
	t.Logf("with the right identity: %s delivered", sent)
}
