package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/windows"

	"github.com/corral-sh/corral/client"
	"github.com/corral-sh/corral/internal/ipc"
)

func winAlive(pid int) bool {
	h, err := windows.OpenProcess(windows.PROCESS_QUERY_LIMITED_INFORMATION, false, uint32(pid))
	if err != nil {
		return false
	}
	defer windows.CloseHandle(h)
	var code uint32
	return windows.GetExitCodeProcess(h, &code) == nil && code == 259 // STILL_ACTIVE
}

// The daemon on Windows: a shell service (cmd.exe → exe → 2 → 4) restarted
// 10 times keeps exactly its 8 processes, every old tree gone; then corral
// is TerminateProcess'ed and the kernel takes the tree with it.
func TestWindowsDaemonRestartsAndDies(t *testing.T) {
	exe, _ := os.Executable()
	dir, err := os.MkdirTemp("", "corral-win-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	cfg := filepath.Join(dir, "corral.toml")
	// A .bat with a space in its name, run with an argument that has one:
	// both must reach it intact through cmd.exe.
	bat := filepath.Join(dir, "start server.bat")
	os.WriteFile(bat, []byte("@echo off\r\necho arg1=[%~1]\r\n\""+exe+"\" sleep\r\n"), 0o644)
	toml := fmt.Sprintf("[services.chain]\nshell = '\"%s\" tree 2 2'\nenv = { CORRAL_TESTPROC = \"tree\" }\n", exe) +
		fmt.Sprintf("[services.batch]\ncommand = ['%s', 'hello world']\nenv = { CORRAL_TESTPROC = \"sleep\" }\nready = { log = '^arg1=\\[hello world\\]$', timeout = \"60s\" }\n", bat)
	os.WriteFile(cfg, []byte(toml), 0o644)
	d := exec.Command(exe, "daemon", "-c", cfg)
	d.Env = append(os.Environ(), asCorral+"=1")
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Process.Kill(); d.Wait() })
	cl := client.New(ipc.Path(filepath.Join(dir, ".corral")))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// Each tree has a hidden console, served by a conhost.exe in its job.
	members := func() client.Service {
		for {
			s, err := cl.Inspect(ctx, "chain")
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
				t.Fatalf("chain never had 8 members: %+v %v", s, err)
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
	s := members()
	for i := 0; i < 10; i++ {
		old := s.Members
		if _, err := cl.Restart(ctx, "chain", "", true); err != nil {
			t.Fatalf("restart %d: %v", i+1, err)
		}
		s = members()
		for _, m := range old {
			if winAlive(m.PID) {
				t.Fatalf("restart %d: pid %d of the old tree survives", i+1, m.PID)
			}
		}
	}
	// Every restart stopped the old tree with a console event (its members
	// have no handler, so the default one ends them), not by terminating it.
	if ls := s.LastStop; ls == nil || ls.Signalled < 8 || ls.Killed != 0 {
		t.Fatalf("last stop %+v: want every member ended by the console event, none terminated", ls)
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
	d.Process.Kill() // TerminateProcess: no shutdown runs
	d.Wait()
	deadline := time.Now().Add(2 * time.Second)
	for _, m := range s.Members {
		for winAlive(m.PID) {
			if time.Now().After(deadline) {
				t.Fatalf("pid %d outlived corral by 2 s", m.PID)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}
