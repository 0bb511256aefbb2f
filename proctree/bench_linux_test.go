package proctree_test

import (
	"context"
	"fmt"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/corral-sh/corral/internal/procinfo"
	"github.com/corral-sh/corral/internal/testproc"
	"github.com/corral-sh/corral/proctree"
)

// sleepers is a shell with n-1 sleeping children: n processes in all. With
// ignoreTerm the shell and (by inheritance of SIG_IGN) every sleeper ignore
// SIGTERM.
func sleepers(n int, ignoreTerm bool) *exec.Cmd {
	script := fmt.Sprintf(`i=1; while [ $i -lt %d ]; do sleep 1000 & i=$((i+1)); done; echo formed; wait`, n)
	if ignoreTerm {
		script = `trap "" TERM; ` + script
	}
	return exec.Command("/bin/sh", "-c", script)
}

func startFormed(b *testing.B, c proctree.Containment, n int, ignoreTerm bool) *proctree.Tree {
	cmd := sleepers(n, ignoreTerm)
	formed := testproc.NewLineWaiter("formed")
	cmd.Stdout = formed
	tr, err := proctree.Start(cmd, proctree.Options{Containment: c})
	if err != nil {
		b.Fatal(err)
	}
	select {
	case <-formed.Seen:
	case <-time.After(30 * time.Second):
		b.Fatal("sleepers did not form")
	}
	// Every child has been forked; this only confirms it.
	eventually(b, 30*time.Second, fmt.Sprintf("%d members", n), func() bool {
		ms, _ := tr.Members()
		return len(ms) == n
	})
	return tr
}

func stopOrFail(b *testing.B, tr *proctree.Tree, sig syscall.Signal, grace time.Duration) proctree.StopReport {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rep, err := tr.Stop(ctx, sig, grace)
	if err != nil {
		b.Fatal(err)
	}
	return rep
}

// BenchmarkStartStop10 starts a 10-process tree, waits until all ten run,
// and stops it verified-empty (members honour SIGTERM).
func BenchmarkStartStop10(b *testing.B) {
	tiers(b, func(b *testing.B, c proctree.Containment) {
		for i := 0; i < b.N; i++ {
			tr := startFormed(b, c, 10, false)
			stopOrFail(b, tr, syscall.SIGTERM, 5*time.Second)
		}
	})
}

// BenchmarkStop100 times only Stop of a formed 100-process tree, from the
// call to the verified-empty return.
func BenchmarkStop100(b *testing.B) {
	tiers(b, func(b *testing.B, c proctree.Containment) {
		for _, mode := range []struct {
			name       string
			ignoreTerm bool
			grace      time.Duration
		}{
			{"honours-term", false, 5 * time.Second},
			{"ignores-term-grace0", true, 0},
		} {
			b.Run(mode.name, func(b *testing.B) {
				b.StopTimer()
				var scans uint64
				for i := 0; i < b.N; i++ {
					tr := startFormed(b, c, 100, mode.ignoreTerm)
					before := procinfo.ScanCount()
					b.StartTimer()
					rep := stopOrFail(b, tr, syscall.SIGTERM, mode.grace)
					b.StopTimer()
					scans += procinfo.ScanCount() - before
					if rep.Signalled+rep.Killed < 100 {
						b.Fatalf("stop reached %d+%d members, want 100", rep.Signalled, rep.Killed)
					}
				}
				b.ReportMetric(float64(scans)/float64(b.N), "table-scans/op")
			})
		}
	})
}
