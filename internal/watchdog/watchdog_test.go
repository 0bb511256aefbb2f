package watchdog

import (
	"testing"
	"time"

	"github.com/corral-sh/corral/internal/config"
	"github.com/corral-sh/corral/proctree"
)

func procs(pids ...int) []proctree.Process {
	out := make([]proctree.Process, len(pids))
	for i, p := range pids {
		out[i] = proctree.Process{PID: p, StartTicks: uint64(p), RSS: 10 << 20}
	}
	return out
}

func TestMeasureAndCheck(t *testing.T) {
	t0 := time.Unix(1000, 0)
	prev := NewSample(t0, procs(1, 2, 3))
	cur := NewSample(t0.Add(500*time.Millisecond), procs(1, 2, 4, 5, 6, 7))
	u := Measure(prev, cur)
	if u.Members != 6 || u.RSS != 60<<20 || u.ForkRate != 8 {
		t.Fatalf("usage %+v, want 6 members, 60 MiB, 8 new/s", u)
	}
	if b := Check(config.Limits{Processes: 6, Memory: 50 << 20, ForkRate: 10}, u); len(b) != 2 || b[0].Kind != "processes" || b[1].Kind != "memory" || !b[0].Grows() || b[1].Grows() {
		t.Fatalf("breaches %+v", b)
	}
	if b := Check(config.Limits{Processes: 7, Memory: 60 << 20, ForkRate: 8}, u); len(b) != 0 {
		t.Fatalf("at the limits but not over: %+v", b)
	}
	if Measure(Sample{}, cur).ForkRate != 0 {
		t.Fatal("a rate without a previous sample")
	}
	// A pid reused by a new process counts as a birth.
	reused := NewSample(t0.Add(time.Second), []proctree.Process{{PID: 1, StartTicks: 99}})
	if Measure(prev, reused).ForkRate != 1 {
		t.Fatal("a reused pid was not counted as new")
	}
}
