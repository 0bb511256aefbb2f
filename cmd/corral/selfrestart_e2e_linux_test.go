package main

import (
	"fmt"
	"net/http"
	"testing"
	"time"
)

// The UIs' own restart buttons, through the daemon, with their presets: a
// fixture server that restarts itself like ComfyUI-Manager (successor, old
// exits 0: preset comfyui hands over) and like A1111 (tmp/restart, exit 0:
// preset a1111 starts it again at once). Ten restarts in a row: each time a
// new pid answers, status says ready with that pid, the process count is
// constant; then a verified stop.
func TestE2EUIRestartButtons(t *testing.T) {
	for _, ui := range []struct{ preset, mode string }{{"comfyui", "comfy"}, {"a1111", "a1111"}} {
		t.Run(ui.preset, func(t *testing.T) {
			port := freePort(t)
			dir := t.TempDir()
			e := newEnv(t, fmt.Sprintf(`
[services.ui]
preset = %q
port = %d
dir = %q
command = ["{exe}", "uiserver", "-addr", "127.0.0.1:%d", "-mode", %q, "-workers", "2"]
env = { CORRAL_TESTPROC = "uiserver", GORACE = "atexit_sleep_ms=0" }
restart = { backoff = "5s" }
`, ui.preset, port, dir, port, ui.mode))
			e.must("up")
			s := e.inspect("ui")
			count := s.MemberCount
			seen := identities(t, s)
			for i := 1; i <= 10; i++ {
				prev := s.PID
				resp, err := http.Post(fmt.Sprintf("http://127.0.0.1:%d/restart", port), "", nil)
				if err != nil {
					t.Fatalf("restart %d: %v", i, err)
				}
				resp.Body.Close()
				deadline := time.Now().Add(20 * time.Second)
				for {
					s = e.inspect("ui")
					if s.State == "ready" && s.PID != prev && s.PID != 0 {
						if uiPID(port) == s.PID {
							break
						}
					}
					if time.Now().After(deadline) {
						t.Fatalf("restart %d: not back: %+v", i, s)
					}
					time.Sleep(20 * time.Millisecond)
				}
				if s.MemberCount != count {
					t.Fatalf("restart %d: %d processes, want %d", i, s.MemberCount, count)
				}
				if s.Restarts != 0 {
					t.Fatalf("restart %d: counted as %d restarts", i, s.Restarts)
				}
				seen = append(seen, identities(t, s)...)
			}
			if ui.mode == "comfy" && (s.PreviousPID == 0 || s.Starts != 1) {
				t.Fatalf("comfyui: a hand-over keeps the instance: %+v", s)
			}
			if ui.mode == "a1111" && (s.Starts != 11 || s.LastExit == nil || !s.LastExit.Requested) {
				t.Fatalf("a1111: 11 starts, each asked for by the program: %+v", s)
			}
			e.must("stop", "ui")
			for _, id := range seen {
				if alive(id) {
					t.Fatalf("pid %d survived the stop", id.pid)
				}
			}
		})
	}
}
