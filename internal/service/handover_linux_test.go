package service

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/corral-sh/corral/internal/config"
	"github.com/corral-sh/corral/internal/journal"
	"github.com/corral-sh/corral/internal/restart"
	"github.com/corral-sh/corral/internal/testproc"
	"github.com/corral-sh/corral/proctree"
)

type uiAnswer struct {
	PID         int    `json:"pid"`
	Generation  int    `json:"generation"`
	Restarting  string `json:"restarting"`
	Restartable string `json:"restartable"`
}

func uiGet(t *testing.T, addr string) (uiAnswer, error) {
	var a uiAnswer
	resp, err := http.Get("http://" + addr + "/")
	if err != nil {
		return a, err
	}
	defer resp.Body.Close()
	return a, json.NewDecoder(resp.Body).Decode(&a)
}

func uiRestart(t *testing.T, addr string) {
	t.Helper()
	resp, err := http.Post("http://"+addr+"/restart", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}

func uiService(t *testing.T, mode string, lifetime config.Lifetime, extra ...string) (*config.Service, string) {
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cfg := fixture("uiserver", append([]string{"-addr", addr, "-mode", mode}, extra...)...)
	cfg.Name = "ui"
	cfg.Lifetime = lifetime
	cfg.Dir = t.TempDir()
	cfg.Ready = config.Probe{HTTP: "http://" + addr + "/", Log: regexp.MustCompile("Running on local URL"), Timeout: 10 * time.Second, Interval: 20 * time.Millisecond}
	cfg.Restart = restart.Policy{Mode: restart.Never}
	return cfg, addr
}

func (h *harness) events(kind journal.Kind) []journal.Event {
	var out []journal.Event
	for _, e := range h.bus.Recent(0) {
		if e.Kind == kind {
			out = append(out, e)
		}
	}
	return out
}

// A server that restarts itself by starting its successor and exiting 0
// (ComfyUI-Manager on Windows): with lifetime = "handover" the instance goes
// on, the successor is the main process once ready, nothing is counted as
// a restart, and the process count stays constant. Negative control: with
// lifetime = "leader" the same restart ends the instance and the successor
// is stopped with it.
func TestHandoverToASuccessor(t *testing.T) {
	for _, tier := range []proctree.Containment{proctree.Auto, proctree.ForcePgroup} {
		name := map[proctree.Containment]string{proctree.Auto: "auto", proctree.ForcePgroup: "pgroup"}[tier]
		t.Run(name, func(t *testing.T) { handoverToASuccessor(t, tier) })
	}
}

func handoverToASuccessor(t *testing.T, tier proctree.Containment) {
	cfg, addr := uiService(t, "comfy", config.LifetimeHandover)
	h := newHarnessIn(t, cfg, tier)
	st := h.ensure()
	want := members(t, h.svc)
	for i := 1; i <= 3; i++ {
		prev := st.PID
		uiRestart(t, addr)
		eventually(t, 20*time.Second, "the successor to be ready", func() bool {
			st = h.svc.Status()
			return st.State == Ready && st.PID != prev
		})
		a, err := uiGet(t, addr)
		if err != nil || a.PID != st.PID || a.Generation != i {
			t.Fatalf("restart %d: status pid %d, the server answers %+v (%v)", i, st.PID, a, err)
		}
		if st.PreviousPID != prev || st.Restarts != 0 || st.Starts != 1 || st.Instance != h.spawns()[0].Instance {
			t.Fatalf("restart %d: %+v", i, st)
		}
		if got := members(t, h.svc); got != want {
			t.Fatalf("restart %d: %d members, want %d", i, got, want)
		}
	}
	if n := len(h.events(journal.Handover)); n != 3 {
		t.Fatalf("%d handover events, want 3", n)
	}

	// Negative control.
	cfg2, addr2 := uiService(t, "comfy", config.LifetimeLeader)
	h2 := newHarnessIn(t, cfg2, tier)
	h2.ensure()
	uiRestart(t, addr2)
	eventually(t, 20*time.Second, "the leader service to end", func() bool {
		s := h2.svc.Status()
		return s.State == Done || s.State == Failed
	})
	if _, err := uiGet(t, addr2); err == nil {
		t.Fatal("the successor answers: lifetime leader was expected to stop it")
	}
}

// A successor that never gets ready: the instance ended, the policy
// decides (never: failed, not_ready), and nothing is left.
func TestHandoverSuccessorNeverReady(t *testing.T) {
	cfg, addr := uiService(t, "comfy", config.LifetimeHandover, "-successor-broken")
	cfg.Ready.Timeout = 500 * time.Millisecond
	h := newHarness(t, cfg)
	first := h.ensure()
	uiRestart(t, addr)
	eventually(t, 20*time.Second, "the instance to end", func() bool { return h.svc.Status().State == Failed })
	st := h.svc.Status()
	if st.Code != CodeNotReady {
		t.Fatalf("status %s [%s] %s", st.State, st.Code, st.Reason)
	}
	if left := testproc.Carriers(first.Instance); len(left) > 0 {
		t.Fatalf("left %v", left)
	}
}

// A stop during a hand-over stops old and new completely.
func TestStopDuringHandover(t *testing.T) {
	cfg, addr := uiService(t, "comfy", config.LifetimeHandover, "-successor-broken")
	h := newHarness(t, cfg)
	first := h.ensure()
	uiRestart(t, addr)
	eventually(t, 20*time.Second, "the hand-over", func() bool { return h.svc.Status().State == Handover })
	st, err := h.svc.Stop(context.Background())
	if err != nil || st.State != Stopped {
		t.Fatalf("stop: %v %s", err, st.State)
	}
	if left := testproc.Carriers(first.Instance); len(left) > 0 {
		t.Fatalf("left %v", left)
	}
}

// os.execv on Linux keeps the pid: nothing exits, nothing hands over, the
// instance stays ready with the same main process.
func TestSamePidReexecKeepsWorking(t *testing.T) {
	cfg, addr := uiService(t, "exec", config.LifetimeHandover)
	h := newHarness(t, cfg)
	st := h.ensure()
	uiRestart(t, addr)
	var a uiAnswer
	eventually(t, 20*time.Second, "the re-executed server to answer", func() bool {
		var err error
		a, err = uiGet(t, addr)
		return err == nil && a.Generation == 1
	})
	now := h.svc.Status()
	if a.PID != st.PID || now.PID != st.PID || now.State != Ready || now.Starts != 1 || len(h.events(journal.Handover)) != 0 {
		t.Fatalf("after exec in place: server %+v, status %+v", a, now)
	}
}

// A1111's protocol: the UI touches tmp/restart and exits 0; corral starts it
// again at once (no backoff: the policy's would be 10 s), as a restart the
// program asked for, with SD_WEBUI_RESTARTING=1; the program removes the
// file at its start. SD_WEBUI_RESTART is set by the preset.
func TestA1111RestartFile(t *testing.T) {
	cfg, addr := uiService(t, "a1111", config.LifetimeLeader)
	cfg.RestartFile = filepath.Join(cfg.Dir, "tmp", "restart")
	cfg.Env = append(cfg.Env, "SD_WEBUI_RESTART=1")
	cfg.Restart = restart.Policy{Mode: restart.OnFailure, Backoff: 10 * time.Second, MaxBackoff: 10 * time.Second, Burst: 5, Window: time.Minute}
	h := newHarness(t, cfg)
	first := h.ensure()
	if a, err := uiGet(t, addr); err != nil || a.Restartable != "1" || a.Restarting != "" {
		t.Fatalf("first instance: %+v %v", a, err)
	}
	began := time.Now()
	uiRestart(t, addr)
	var st Status
	eventually(t, 20*time.Second, "the restarted instance", func() bool {
		st = h.svc.Status()
		return st.State == Ready && st.Instance != first.Instance
	})
	if took := time.Since(began); took > 5*time.Second {
		t.Fatalf("came back after %v: a backoff was applied", took)
	}
	a, err := uiGet(t, addr)
	if err != nil || a.Restarting != "1" {
		t.Fatalf("restarted instance: %+v %v", a, err)
	}
	if _, err := os.Stat(cfg.RestartFile); !os.IsNotExist(err) {
		t.Fatalf("the restart file is still there (%v)", err)
	}
	for _, e := range h.bus.Recent(0) {
		if e.Kind == journal.State && strings.Contains(e.Message, "backoff") {
			t.Fatalf("went through backoff: %s", e.Message)
		}
	}
	var asked bool
	for _, e := range h.events(journal.Restart) {
		asked = asked || strings.Contains(e.Message, "asked to be started again")
	}
	if !asked || st.Restarts != 0 || st.Starts != 2 || st.LastExit == nil || !st.LastExit.Requested {
		t.Fatalf("asked %v, status %+v", asked, st)
	}
	if left := testproc.Carriers(first.Instance); len(left) > 0 {
		t.Fatalf("the first instance left %v", left)
	}
}
