// Package watchdog owns runaway detection: from two successive samples of a
// tree's members it computes the tree-wide usage (member count, summed
// resident memory, new members per second) and compares it with the
// configured limits. It is pure: the supervisor samples, acts and journals.
package watchdog

import (
	"fmt"
	"time"

	"github.com/corral-sh/corral/internal/config"
	"github.com/corral-sh/corral/proctree"
)

// PIDs returns the pids of the sample's members.
func (s Sample) PIDs() []int {
	out := make([]int, 0, len(s.Members))
	for k := range s.Members {
		out = append(out, k.pid)
	}
	return out
}

// Sample is one look at a tree.
type Sample struct {
	At      time.Time
	Members map[procKey]struct{}
	RSS     int64
}

type procKey struct {
	pid   int
	start uint64
}

// NewSample summarises members seen at t.
func NewSample(t time.Time, members []proctree.Process) Sample {
	s := Sample{At: t, Members: make(map[procKey]struct{}, len(members))}
	for _, m := range members {
		s.Members[procKey{m.PID, m.StartTicks}] = struct{}{}
		s.RSS += m.RSS
	}
	return s
}

// SampleOf summarises members known only by pid, with their summed RSS
// (the cheap form: a pid reused within one interval inside one tree would
// not count as a birth).
func SampleOf(t time.Time, pids []int, rss int64) Sample {
	s := Sample{At: t, Members: make(map[procKey]struct{}, len(pids)), RSS: rss}
	for _, p := range pids {
		s.Members[procKey{pid: p}] = struct{}{}
	}
	return s
}

// Usage is a tree's consumption at a sample.
type Usage struct {
	Members  int     `json:"members"`
	RSS      int64   `json:"rss"`
	ForkRate float64 `json:"fork_rate"` // new members per second since the previous sample
	// GPUMemory is the GPU memory the members hold (bytes), where known.
	GPUMemory int64 `json:"gpu_memory,omitempty"`
}

// Measure returns the usage at cur, with the fork rate relative to prev
// (zero prev: no rate yet).
func Measure(prev, cur Sample) Usage {
	u := Usage{Members: len(cur.Members), RSS: cur.RSS}
	if prev.At.IsZero() || !cur.At.After(prev.At) {
		return u
	}
	born := 0
	for k := range cur.Members {
		if _, ok := prev.Members[k]; !ok {
			born++
		}
	}
	u.ForkRate = float64(born) / cur.At.Sub(prev.At).Seconds()
	return u
}

// Breach is one limit exceeded.
type Breach struct {
	Kind  string  `json:"kind"` // processes, memory, fork_rate
	Value float64 `json:"value"`
	Limit float64 `json:"limit"`
	// Refused is the number of forks the kernel refused at the limit.
	Refused int `json:"refused,omitempty"`
}

func (b Breach) String() string {
	switch b.Kind {
	case "memory":
		return fmt.Sprintf("memory %.0f MiB over the limit of %.0f MiB", b.Value/(1<<20), b.Limit/(1<<20))
	case "fork_rate":
		return fmt.Sprintf("%.0f new processes/s over the limit of %.0f/s", b.Value, b.Limit)
	case "gpu_memory":
		return fmt.Sprintf("GPU memory %.0f MiB over the limit of %.0f MiB", b.Value/(1<<20), b.Limit/(1<<20))
	}
	if b.Refused > 0 {
		return fmt.Sprintf("%.0f processes at a kernel limit of %.0f, %d forks refused", b.Value, b.Limit, b.Refused)
	}
	return fmt.Sprintf("%.0f processes, limit %.0f", b.Value, b.Limit)
}

// Grows reports whether the breach is about the tree growing (processes,
// fork rate): those trees are frozen before anything else happens.
func (b Breach) Grows() bool { return b.Kind != "memory" && b.Kind != "gpu_memory" }

// Check compares usage with limits. The process limit is reached at the
// limit itself: where the kernel enforces it, the tree can never exceed it.
func Check(l config.Limits, u Usage) []Breach {
	var out []Breach
	if l.Processes > 0 && u.Members >= l.Processes {
		out = append(out, Breach{Kind: "processes", Value: float64(u.Members), Limit: float64(l.Processes)})
	}
	if l.ForkRate > 0 && u.ForkRate > l.ForkRate {
		out = append(out, Breach{Kind: "fork_rate", Value: u.ForkRate, Limit: l.ForkRate})
	}
	if l.Memory > 0 && u.RSS > l.Memory {
		out = append(out, Breach{Kind: "memory", Value: float64(u.RSS), Limit: float64(l.Memory)})
	}
	if l.GPUMemory > 0 && u.GPUMemory > l.GPUMemory {
		out = append(out, Breach{Kind: "gpu_memory", Value: float64(u.GPUMemory), Limit: float64(l.GPUMemory)})
	}
	return out
}
