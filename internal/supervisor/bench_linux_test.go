package supervisor

import (
	"context"
	"testing"
	"time"

	"github.com/corral-sh/corral/internal/config"
	"github.com/corral-sh/corral/proctree"
)

// BenchmarkWatchdogPass: one accounting pass of the watchdog over a service
// of 1000 member processes. At the default 1 s interval, ns/op / 1e7 is the
// share of one core the watchdog costs (target ≤ 1%).
func BenchmarkWatchdogPass(b *testing.B) {
	for _, c := range []proctree.Containment{proctree.ForceCgroup, proctree.ForcePgroup} {
		b.Run(string(c), func(b *testing.B) {
			if c == proctree.ForceCgroup {
				if _, _, err := proctree.Resolve(proctree.Options{Containment: c}); err != nil {
					b.Skipf("cgroup tier unavailable: %v", err)
				}
			}
			cfg, err := config.Parse("bench.toml", `
[services.many]
shell = "i=0; while [ $i -lt 999 ]; do sleep 1000 & i=$((i+1)); done; wait"
limits = { processes = 5000, memory = "100GB", fork_rate = 100000 }
`)
			if err != nil {
				b.Fatal(err)
			}
			s, err := New(cfg, Options{StateDir: b.TempDir(), Containment: c})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Shutdown(context.Background())
			ctx := context.Background()
			if _, err := s.Ensure(ctx, "many"); err != nil {
				b.Fatal(err)
			}
			deadline := time.Now().Add(60 * time.Second)
			for {
				v, _ := s.Inspect("many")
				if v.MemberCount == 1000 {
					break
				}
				if time.Now().After(deadline) {
					b.Fatalf("only %d members", v.MemberCount)
				}
				time.Sleep(50 * time.Millisecond)
			}
			w := newWatcher(s)
			defer w.close()
			w.pass(ctx)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				w.pass(ctx)
			}
			b.StopTimer()
			perPass := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
			b.ReportMetric(perPass/1e7, "%core-at-1s")
			if len(w.acted) != 0 {
				b.Fatal("a breach below the limits")
			}
		})
	}
}
