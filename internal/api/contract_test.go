package api_test

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/corral-sh/corral/client"
	"github.com/corral-sh/corral/internal/daemon"
	"github.com/corral-sh/corral/internal/journal"
	"github.com/corral-sh/corral/internal/logs"
	"github.com/corral-sh/corral/internal/reclaim"
	"github.com/corral-sh/corral/internal/service"
	"github.com/corral-sh/corral/internal/supervisor"
	"github.com/corral-sh/corral/proctree"
)

// The client's types are the public wire contract; the daemon marshals its
// own. Every key the daemon sends must be known to the client, and the
// client must not expect keys the daemon never sends.
func TestWireContract(t *testing.T) {
	now := time.Date(2026, 11, 27, 1, 2, 3, 0, time.UTC)
	proc := proctree.Process{PID: 1, PPID: 2, PGID: 3, Start: now, Cmdline: []string{"a"}, RSS: 4, State: "S", StartTicks: 5}
	report := &proctree.StopReport{Signal: "SIGTERM", Signalled: 1, Exited: 1, Killed: 1, Duration: time.Second, Survivors: []proctree.Process{proc}}
	view := supervisor.View{
		Status: service.Status{Name: "s", State: service.Ready, Reason: "r", Since: now, Instance: "i", PID: 1, Mechanism: "m",
			Profile: "p", StartedAt: now, Restarts: 1, Starts: 2, NextStart: now,
			LastExit:     &service.ExitInfo{At: now, Code: 1, Signaled: true, Description: "d", Requested: true},
			ExternalPIDs: []int{7}, LastStop: report,
			Limits: &service.LimitsView{Processes: 1, Memory: 2, ForkRate: 3, OnLimit: "stop"}, Frozen: true, KernelLimit: true},
		Members: []proctree.Process{proc}, MemberCount: 1, RSS: 4,
	}
	for _, tc := range []struct {
		name   string
		server any
		client any
	}{
		{"service", view, &client.Service{}},
		{"daemon", daemon.Info{PID: 1, Version: "v", Config: "c", StateDir: "s", Started: now, Mechanism: "m"}, &client.Daemon{}},
		{"event", journal.Event{Seq: 1, Time: now, Kind: journal.Spawn, Service: "s", Instance: "i", PID: 1, Message: "m", Fields: map[string]string{"k": "v"},
			Cgroup: "/c", Start: 9, Boot: "b", Cmdline: []string{"x"}}, &client.Event{}},
		{"log line", logs.Line{Seq: 1, Time: now, Stream: "stdout", Text: "t"}, &client.LogLine{}},
		{"reload", supervisor.ReloadResult{Added: []string{"a"}, Removed: []string{"b"}, Changed: []string{"c"}, Unchanged: []string{"d"}}, &client.ReloadResult{}},
		{"reap", reclaim.Report{Instance: "i", Service: "s", Cgroup: "/c", Found: []proctree.Process{proc}, Killed: 1, Reused: 2, Error: "e"}, &client.ReapReport{}},
		{"shutdown", supervisor.ShutdownResult{Stopped: []string{"a"}, Errors: []string{"e"}, Survivors: []supervisor.Survivor{{Service: "s", Instance: "i", PID: 1, Cmdline: []string{"c"}}}}, &client.ShutdownResult{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sent, err := json.Marshal(tc.server)
			if err != nil {
				t.Fatal(err)
			}
			dec := json.NewDecoder(bytes.NewReader(sent))
			dec.DisallowUnknownFields()
			if err := dec.Decode(tc.client); err != nil {
				t.Fatalf("the client cannot read what the daemon sends: %v\n%s", err, sent)
			}
			back, _ := json.Marshal(tc.client)
			var a, b any
			json.Unmarshal(sent, &a)
			json.Unmarshal(back, &b)
			if !reflect.DeepEqual(a, b) {
				t.Fatalf("round trip differs:\n daemon %s\n client %s", sent, back)
			}
		})
	}
}
