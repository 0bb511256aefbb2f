package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/corral-sh/corral/client"
)

// corral top --once against a real daemon and the webui fixture tree: the
// service's line has its state, pid and member count, and its events are
// there; without --once, to a pipe, top prints the same snapshot.
func TestE2ETopOnce(t *testing.T) {
	e := newEnv(t, webuiTOML(freePort(t), ""))
	e.must("up")
	s := e.inspect("webui")

	row := func(out string) []string {
		t.Helper()
		for _, l := range strings.Split(out, "\n") {
			if f := strings.Fields(l); len(f) > 0 && f[0] == "webui" {
				return f
			}
		}
		t.Fatalf("no line for webui:\n%s", out)
		return nil
	}
	for _, args := range [][]string{{"top", "--once", "--interval", "200ms"}, {"top", "--interval", "200ms"}} {
		out := e.must(args...)
		f := row(out)
		// SERVICE STATE PID PROCS RSS(2 fields) CPU% UPTIME RESTARTS
		if f[1] != "ready" || f[2] != fmt.Sprint(s.PID) || f[3] != fmt.Sprint(s.MemberCount) || !strings.HasSuffix(f[6], "%") {
			t.Errorf("corral %v: webui's line is %q, want ready, pid %d, %d processes, a CPU%%:\n%s", args, f, s.PID, s.MemberCount, out)
		}
		if !strings.HasPrefix(out, "corral top · 1 service, 1 running") || !strings.Contains(out, "EVENTS") || !strings.Contains(out, "webui  spawn") {
			t.Errorf("corral %v: no header or no events:\n%s", args, out)
		}
		if strings.Contains(out, "\x1b") || strings.Contains(out, "q quit") {
			t.Errorf("corral %v: escape codes or keys in a snapshot:\n%q", args, out)
		}
	}

	var j struct {
		Services   []client.Service   `json:"services"`
		CPUPercent map[string]float64 `json:"cpu_percent"`
	}
	out := e.must("top", "--json", "--interval", "200ms")
	if err := json.Unmarshal([]byte(out), &j); err != nil {
		t.Fatalf("top --json: %v:\n%s", err, out)
	}
	if len(j.Services) != 1 || len(j.Services[0].Members) != s.MemberCount {
		t.Errorf("top --json: services %+v, want webui with its %d members", j.Services, s.MemberCount)
	}
	if _, ok := j.CPUPercent["webui"]; !ok {
		t.Errorf("top --json: no CPU%% for webui: %v", j.CPUPercent)
	}

	e.must("stop", "webui")
	if f := row(e.must("top", "--once", "--interval", "200ms")); f[1] != "stopped" || f[2] != "-" {
		t.Errorf("after a stop webui's line is %q, want stopped and no pid", f)
	}
}
