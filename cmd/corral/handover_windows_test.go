package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/corral-sh/corral/client"
)

// ComfyUI-Manager's restart on Windows: os.execv starts the successor as a
// new process (in the same job) and the old one exits 0. With lifetime =
// "handover" the instance goes on: the successor is the main process once
// ready, three times in a row, the same instance, nothing counted as a
// restart; then a stop leaves nothing.
func TestWindowsHandover(t *testing.T) {
	exe, _ := os.Executable()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	dir := winDir(t)
	toml := fmt.Sprintf(`[services.comfy]
command = [%q, "uiserver", "-addr", "127.0.0.1:%d", "-mode", "comfy", "-workers", "1"]
env = { CORRAL_TESTPROC = "uiserver" }
lifetime = "handover"
ready = { http = "http://127.0.0.1:%d/system_stats", timeout = "60s", interval = "50ms" }
restart = { policy = "never" }
`, exe, port, port)
	d, stderr, cl := startWinDaemon(t, dir, toml, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var s client.Service
	for {
		if s, err = cl.Ensure(ctx, "comfy", time.Minute); err == nil {
			break
		}
		if !errors.Is(err, client.ErrNoDaemon) || ctx.Err() != nil {
			t.Fatalf("ensure: %v\n%s", err, tail(stderr.String(), 2000))
		}
		time.Sleep(100 * time.Millisecond) // the daemon does not answer yet
	}
	s, _ = cl.Inspect(ctx, "comfy")
	seen := append([]client.Process(nil), s.Members...)
	for i := 1; i <= 3; i++ {
		prev := s.PID
		resp, err := http.Post(fmt.Sprintf("http://127.0.0.1:%d/restart", port), "", nil)
		if err != nil {
			t.Fatalf("restart %d: %v", i, err)
		}
		resp.Body.Close()
		for {
			s, _ = cl.Inspect(ctx, "comfy")
			if s.State == "ready" && s.PID != prev && s.PID != 0 && uiPID(port) == s.PID {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("restart %d: the successor never took over: %+v\n%s", i, s, tail(stderr.String(), 2000))
			}
			time.Sleep(50 * time.Millisecond)
		}
		if s.PreviousPID != prev || s.Restarts != 0 || s.Starts != 1 {
			t.Fatalf("restart %d: %+v", i, s)
		}
		seen = append(seen, s.Members...)
	}
	if _, err := cl.Stop(ctx, "comfy"); err != nil {
		t.Fatal(err)
	}
	for _, m := range seen {
		if winAlive(m) {
			t.Fatalf("pid %d (%v) survived the stop", m.PID, m.Cmdline)
		}
	}
	if res, err := cl.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v %+v", err, res)
	}
	d.Wait()
}
