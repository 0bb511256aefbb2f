package metrics

import (
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/corral-sh/corral/internal/journal"
	"github.com/corral-sh/corral/internal/service"
	"github.com/corral-sh/corral/internal/supervisor"
	"github.com/corral-sh/corral/proctree"
)

type source []supervisor.View

func (s source) List(bool) []supervisor.View { return s }

// value returns the metric of family name whose labels include want.
func value(t *testing.T, fams []*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	t.Helper()
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	next:
		for _, m := range f.GetMetric() {
			got := map[string]string{}
			for _, l := range m.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if got[k] != v {
					continue next
				}
			}
			switch {
			case m.Gauge != nil:
				return m.GetGauge().GetValue(), true
			case m.Counter != nil:
				return m.GetCounter().GetValue(), true
			case m.Histogram != nil:
				return float64(m.GetHistogram().GetSampleCount()), true
			}
		}
	}
	return 0, false
}

func TestScrapeReadsTheTrees(t *testing.T) {
	started := time.Unix(1_700_000_000, 0)
	gpuMem, memberGPU := int64(2048<<20), int64(2048<<20)
	src := source{
		{Status: service.Status{Name: "webui", State: service.Ready, Instance: "i1", StartedAt: started, Starts: 3,
			LastStop: &proctree.StopReport{Exited: 4, Killed: 1, Duration: 1500 * time.Millisecond, Survivors: []proctree.Process{}}},
			Members:     []supervisor.Member{{Process: proctree.Process{PID: 10, RSS: 1000}, GPUMemory: &memberGPU}, {Process: proctree.Process{PID: 11}}},
			MemberCount: 2, RSS: 1000, CPUSeconds: 2.5, GPUMemory: &gpuMem},
		{Status: service.Status{Name: "idle", State: service.Stopped}},
	}
	m := New(src, nil)
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"corral_service_state", map[string]string{"service": "webui", "state": "ready"}, 1},
		{"corral_service_state", map[string]string{"service": "webui", "state": "stopped"}, 0},
		{"corral_service_state", map[string]string{"service": "idle", "state": "stopped"}, 1},
		{"corral_service_starts_total", map[string]string{"service": "webui"}, 3},
		{"corral_service_members", map[string]string{"service": "webui"}, 2},
		{"corral_service_cpu_seconds", map[string]string{"service": "webui"}, 2.5},
		{"corral_service_rss_bytes", map[string]string{"service": "webui"}, 1000},
		{"corral_service_gpu_memory_bytes", map[string]string{"service": "webui"}, 2048 << 20},
		{"corral_service_gpu_processes", map[string]string{"service": "webui"}, 1},
		{"corral_service_last_stop_processes", map[string]string{"service": "webui", "outcome": "killed"}, 1},
		{"corral_service_last_stop_processes", map[string]string{"service": "webui", "outcome": "exited_on_signal"}, 4},
		{"corral_service_last_stop_processes", map[string]string{"service": "webui", "outcome": "survivors"}, 0},
		{"corral_service_last_stop_duration_seconds", map[string]string{"service": "webui"}, 1.5},
		{"corral_service_instance_start_time_seconds", map[string]string{"service": "webui"}, 1_700_000_000},
	} {
		got, ok := value(t, fams, c.name, c.labels)
		if !ok || got != c.want {
			t.Errorf("%s%v = %v (found %v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}
	if _, ok := value(t, fams, "corral_service_gpu_memory_bytes", map[string]string{"service": "idle"}); ok {
		t.Error("a GPU figure where none is known")
	}
	if _, ok := value(t, fams, "corral_service_instance_start_time_seconds", map[string]string{"service": "idle"}); ok {
		t.Error("a start time for a service with no instance")
	}
	for _, daemon := range []string{"go_goroutines", "process_resident_memory_bytes"} {
		if v, ok := value(t, fams, daemon, nil); !ok || v <= 0 {
			t.Errorf("daemon metric %s = %v %v", daemon, v, ok)
		}
	}
}

func TestEventsAreCounted(t *testing.T) {
	m := New(source{}, nil)
	for _, e := range []journal.Event{
		{Kind: journal.Restart, Service: "w", Fields: map[string]string{"cause": "exited"}},
		{Kind: journal.Restart, Service: "w", Fields: map[string]string{"cause": "exited"}},
		{Kind: journal.Restart, Service: "w", Fields: map[string]string{"cause": "unhealthy"}},
		{Kind: journal.Restart, Service: "w", Fields: map[string]string{"by": "program"}},
		{Kind: journal.State, Service: "w", Fields: map[string]string{"from": "ready", "to": "restarting"}},
		{Kind: journal.State, Service: "w", Fields: map[string]string{"from": "starting", "to": "ready"}},
		{Kind: journal.Runaway, Service: "w", Fields: map[string]string{"kind": "memory"}},
		{Kind: journal.Leak, Service: ""},
	} {
		m.Observe(e)
	}
	m.ObserveProbe("w", "ready", 20*time.Millisecond, nil)
	m.ObserveProbe("w", "ready", time.Second, os.ErrDeadlineExceeded)
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"corral_service_restarts_total", map[string]string{"service": "w", "reason": "exited"}, 2},
		{"corral_service_restarts_total", map[string]string{"service": "w", "reason": "unhealthy"}, 1},
		{"corral_service_restarts_total", map[string]string{"service": "w", "reason": "program"}, 1},
		{"corral_service_restarts_total", map[string]string{"service": "w", "reason": "requested"}, 1},
		{"corral_service_runaways_total", map[string]string{"service": "w", "limit": "memory"}, 1},
		{"corral_leaks_total", map[string]string{"service": ""}, 1},
		{"corral_service_probe_duration_seconds", map[string]string{"service": "w", "probe": "ready", "result": "ok"}, 1},
		{"corral_service_probe_duration_seconds", map[string]string{"service": "w", "probe": "ready", "result": "fail"}, 1},
	} {
		if got, ok := value(t, fams, c.name, c.labels); !ok || got != c.want {
			t.Errorf("%s%v = %v (found %v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}
	// The text format a scraper reads.
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if body := rec.Body.String(); rec.Code != 200 || !strings.Contains(body, `corral_service_restarts_total{reason="exited",service="w"} 2`) {
		t.Fatalf("GET /metrics: %d\n%s", rec.Code, body)
	}
}
