package logs_test

import (
	"encoding/json"
	"io"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/corral-sh/corral/internal/logs"
	"github.com/corral-sh/corral/internal/testproc"
	"github.com/corral-sh/corral/proctree"
)

// cpuTime is this process's user and system time so far: the daemon's
// side of the capture, not the printing child's.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkCapture: what a service's output costs the daemon, as it runs
// there: a contained child (the flood fixture) writing 100-byte lines, one
// write(2) per line, through proctree's pipe copier into a Sink that keeps
// a ring and a log file. One op is 1 MiB of output. cpu-s/MB is the
// daemon's processor time (user + system, from its own rusage) per MiB;
// %core is that time over the wall time (at 1MBps: the share of one core
// a service printing 1 MiB/s costs; target ≤ 10). Without -race:
//
//	go test -run '^$' -bench Capture -benchtime 20x ./internal/logs
//
// (the paced case takes a second per op: -benchtime 5x is enough there).
func BenchmarkCapture(b *testing.B) {
	for _, c := range []struct {
		name     string
		rate     int64
		follower bool
	}{
		{"flood", 0, false},
		{"flood-follower", 0, true},
		{"1MBps", 1 << 20, false},
		{"1MBps-follower", 1 << 20, true},
	} {
		b.Run(c.name, func(b *testing.B) {
			sink := logs.NewSink(logs.Options{File: filepath.Join(b.TempDir(), "svc.log")})
			defer sink.Close()
			if c.follower {
				// A corral logs -f: every line encoded as the API sends it.
				_, ch, cancel := sink.Subscribe(0)
				stop := make(chan struct{})
				defer func() { close(stop); cancel() }()
				go func() {
					enc := json.NewEncoder(io.Discard)
					for {
						select {
						case l := <-ch:
							enc.Encode(l)
						case <-stop:
							return
						}
					}
				}()
			}
			total := int64(b.N) << 20
			cmd := testproc.Command("flood", strconv.FormatInt(total, 10), "100", strconv.FormatInt(c.rate, 10))
			cmd.Stdout, cmd.Stderr = sink.Writer("stdout"), sink.Writer("stderr")
			b.SetBytes(1 << 20)
			b.ResetTimer()
			began, cpu0 := time.Now(), cpuTime(b)
			tr, err := proctree.Start(cmd, proctree.Options{})
			if err != nil {
				b.Fatal(err)
			}
			select {
			case <-tr.Done():
			case <-time.After(10 * time.Minute):
				b.Fatal("the flood did not end")
			}
			tr.OutputDone()
			cpu, wall := cpuTime(b)-cpu0, time.Since(began)
			b.StopTimer()
			if last := sink.Tail(1); len(last) != 1 || last[0].Text != testproc.FloodDone {
				b.Fatalf("the last line is %v, not %q", last, testproc.FloodDone)
			}
			if st, err := tr.ExitState(); err != nil || st.ExitCode() != 0 {
				b.Fatalf("flood ended with %v %v", st, err)
			}
			b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/MB")
			b.ReportMetric(100*cpu.Seconds()/wall.Seconds(), "%core")
		})
	}
}
