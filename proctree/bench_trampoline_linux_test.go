package proctree_test

import (
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/corral-sh/corral/proctree"
)

// BenchmarkGatedStart times Start of a gated /bin/true, from the call until
// the real program is in place (the ptrace gate: detached after its execve;
// the trampoline: its exec done), under each gate and in each start path.
// The tree's end is waited for outside the timer.
func BenchmarkGatedStart(b *testing.B) {
	for _, p := range []struct {
		name string
		opts proctree.Options
	}{
		{"cgroup", proctree.Options{Containment: proctree.ForceCgroup}},
		{"pgroup-shim", proctree.Options{Containment: proctree.ForcePgroup}},
		{"pgroup-direct", proctree.Options{Containment: proctree.ForcePgroup, NoShim: true}},
	} {
		b.Run(p.name, func(b *testing.B) {
			if p.opts.Containment == proctree.ForceCgroup {
				if os.Geteuid() != 0 {
					b.Skip("the cgroup tier needs root here")
				}
				skipWithoutCgroup(b)
			}
			for _, kind := range []string{"ptrace", "trampoline"} {
				b.Run(kind, func(b *testing.B) {
					defer proctree.ForceGate(kind)()
					opts := p.opts
					opts.Gate = func(proctree.Gated) error { return nil }
					for i := 0; i < b.N; i++ {
						cmd := exec.Command("/bin/true")
						b.StartTimer()
						tr, err := proctree.Start(cmd, opts)
						b.StopTimer()
						if err != nil {
							b.Fatal(err)
						}
						select {
						case <-tr.Done():
						case <-time.After(10 * time.Second):
							b.Fatal("/bin/true did not end")
						}
					}
				})
			}
		})
	}
}
