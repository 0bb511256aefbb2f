package proctree_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"

	"github.com/corral-sh/corral/internal/testproc"
	"github.com/corral-sh/corral/proctree"
)

// batChain writes a .bat that runs the tree fixture: cmd.exe → exe →
// 2 children → 4 grandchildren, as webui-user.bat → python → workers.
func batChain(t *testing.T) *exec.Cmd {
	exe, _ := os.Executable()
	// Not t.TempDir: under wine its RemoveAll fails ("Invalid function")
	// on the .bat, which would fail the test for a cleanup detail.
	dir, err := os.MkdirTemp("", "corral-bat-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			t.Logf("cleanup of %s: %v", dir, err)
		}
	})
	bat := filepath.Join(dir, "webui-user.bat")
	os.WriteFile(bat, []byte("@echo off\r\n\""+exe+"\" tree 2 2\r\n"), 0o644)
	cmd := exec.Command("cmd.exe", "/d", "/c", bat)
	cmd.Env = testproc.Command("tree").Env
	return cmd
}

const chainSize = 1 + 1 + 2 + 4

func alive(pid int) bool {
	h, err := windows.OpenProcess(windows.PROCESS_QUERY_LIMITED_INFORMATION, false, uint32(pid))
	if err != nil {
		return false
	}
	defer windows.CloseHandle(h)
	var code uint32
	return windows.GetExitCodeProcess(h, &code) == nil && code == 259 // STILL_ACTIVE
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

func TestWindowsJobContainsBatChain(t *testing.T) {
	tr, err := proctree.Start(batChain(t), proctree.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if tr.Mechanism() != proctree.JobObject {
		t.Fatalf("mechanism %s", tr.Mechanism())
	}
	var ms []proctree.Process
	waitFor(t, 60*time.Second, "the chain to form", func() bool {
		ms, _ = tr.Members()
		return len(ms) == chainSize
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rep, err := tr.Stop(ctx, syscall.SIGTERM, 500*time.Millisecond)
	if err != nil {
		t.Fatalf("stop: %v (%+v)", err, rep)
	}
	for _, m := range ms {
		if alive(m.PID) {
			t.Fatalf("member %d (%s) survived the stop", m.PID, m.Cmdline)
		}
	}
	t.Logf("stopped %d members: %+v", len(ms), rep)
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

// Negative control: the same chain without a job, killing only cmd.exe
// (what the desktop app did), leaves the rest running.
func TestWindowsNegativeControlWithoutJob(t *testing.T) {
	cmd := batChain(t)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	root := cmd.Process.Pid
	waitFor(t, 60*time.Second, "the chain to form", func() bool { return len(descendants(root)) == chainSize-1 })
	cmd.Process.Kill()
	cmd.Wait()
	left := descendants(root)
	t.Cleanup(func() {
		for _, pid := range left {
			if h, err := windows.OpenProcess(windows.PROCESS_TERMINATE, false, uint32(pid)); err == nil {
				windows.TerminateProcess(h, 1)
				windows.CloseHandle(h)
			}
		}
	})
	if len(left) != chainSize-1 {
		t.Fatalf("killing cmd.exe left %d processes, want %d (did the fixture change?)", len(left), chainSize-1)
	}
	t.Logf("killing only cmd.exe leaves %d processes running", len(left))
}

func TestWindowsLeaderExitStatus(t *testing.T) {
	tr, err := proctree.Start(testproc.Command("exit", "3"), proctree.Options{})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-tr.Done():
	case <-time.After(60 * time.Second):
		t.Fatal("not done")
	}
	if st, _ := tr.ExitState(); st == nil || st.ExitCode() != 3 {
		t.Fatalf("exit state %v", st)
	}
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
	waitFor(t, 60*time.Second, "the tree to form", func() bool { return len(descendants(leader)) == 2 })
	tree := append(descendants(leader), leader)
	holder.Process.Kill() // TerminateProcess
	holder.Wait()
	waitFor(t, 2*time.Second, "every member to die with its holder", func() bool {
		for _, pid := range tree {
			if alive(pid) {
				return false
			}
		}
		return true
	})
}

// Negative control: the same tree without a job outlives its holder.
func TestWindowsNegativeControlHolderDeathWithoutJob(t *testing.T) {
	holder, leader := startHolder(t, "uncontain")
	waitFor(t, 60*time.Second, "the tree to form", func() bool { return len(descendants(leader)) == 2 })
	tree := append(descendants(leader), leader)
	t.Cleanup(func() {
		for _, pid := range tree {
			if h, err := windows.OpenProcess(windows.PROCESS_TERMINATE, false, uint32(pid)); err == nil {
				windows.TerminateProcess(h, 1)
				windows.CloseHandle(h)
			}
		}
	})
	holder.Process.Kill()
	holder.Wait()
	time.Sleep(500 * time.Millisecond)
	n := 0
	for _, pid := range tree {
		if alive(pid) {
			n++
		}
	}
	if n != len(tree) {
		t.Fatalf("without a job %d of %d outlived the holder; the control shows nothing", n, len(tree))
	}
}
