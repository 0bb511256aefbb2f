package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/corral-sh/corral/client"
)

// These benchmarks drive the daemon and CLI as users do. Run them without
// -race for meaningful figures:
//   go test -run '^$' -bench . -benchtime 1x ./cmd/corral

func median(ds []time.Duration) time.Duration {
	slices.Sort(ds)
	return ds[len(ds)/2]
}

var (
	buildOnce sync.Once
	builtExe  string
	buildErr  error
)

// realCorral builds the corral binary once, so figures are the product's,
// not the (larger) test binary's. It serves the fixtures too.
func realCorral(b *testing.B) string {
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "corral-bench-")
		if err != nil {
			buildErr = err
			return
		}
		builtExe = filepath.Join(dir, "corral")
		out, err := exec.Command("go", "build", "-o", builtExe, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		b.Fatal(buildErr)
	}
	return builtExe
}

func benchEnv(b *testing.B, toml string) *env {
	exe := realCorral(b)
	e := &env{t: b, dir: b.TempDir(), exe: exe}
	os.WriteFile(filepath.Join(e.dir, "corral.toml"), []byte(strings.ReplaceAll(toml, "{exe}", exe)), 0o644)
	b.Cleanup(func() { e.command("shutdown").Run() })
	return e
}

func runCLI(b *testing.B, e *env, args ...string) time.Duration {
	cmd := e.command(args...)
	began := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("corral %v: %v\n%s", args, err, out)
	}
	return time.Since(began)
}

// BenchmarkCLI: wall time of a whole `corral` process against a running
// daemon with one ready service (supervisorctl status takes ~200 ms).
func BenchmarkCLI(b *testing.B) {
	e := benchEnv(b, webuiTOML(freePort(b), ""))
	runCLI(b, e, "up")
	for _, args := range [][]string{{"status"}, {"ensure", "webui"}} {
		b.Run(args[0], func(b *testing.B) {
			var ds []time.Duration
			for i := 0; i < b.N; i++ {
				ds = append(ds, runCLI(b, e, args...))
			}
			b.ReportMetric(float64(median(ds).Microseconds())/1000, "median-ms")
		})
	}
}

// BenchmarkStopFixtureTree: stop (through the API) of the 9-process fixture
// tree whose members honour SIGTERM, until verified empty.
func BenchmarkStopFixtureTree(b *testing.B) {
	e := benchEnv(b, webuiTOML(freePort(b), "autostart = false"))
	runCLI(b, e, "up")
	cl := client.New(filepath.Join(e.dir, ".corral", "corral.sock"))
	ctx := context.Background()
	var ds []time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		if _, err := cl.Ensure(ctx, "webui", time.Minute); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		began := time.Now()
		s, err := cl.Stop(ctx, "webui")
		ds = append(ds, time.Since(began))
		if err != nil || s.LastStop == nil || s.LastStop.Signalled < 9 {
			b.Fatalf("stop: %v %+v", err, s.LastStop)
		}
	}
	b.ReportMetric(float64(median(ds).Microseconds())/1000, "median-ms")
}

// Benchmark100Services: a daemon with 100 sleep services: time from the
// daemon's start until all run, the daemon's RSS then, and a verified
// shutdown's duration.
func Benchmark100Services(b *testing.B) {
	var sb strings.Builder
	for i := 0; i < 100; i++ {
		fmt.Fprintf(&sb, "[services.s%03d]\ncommand = [\"/bin/sleep\", \"1000\"]\n", i)
	}
	for i := 0; i < b.N; i++ {
		e := benchEnv(b, sb.String())
		cl := client.New(filepath.Join(e.dir, ".corral", "corral.sock"))
		d := e.command("daemon")
		began := time.Now()
		if err := d.Start(); err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		var running time.Duration
		for {
			list, err := cl.List(ctx, false)
			n := 0
			for _, s := range list {
				if s.State == "ready" {
					n++
				}
			}
			if err == nil && n == 100 {
				running = time.Since(began)
				break
			}
			if time.Since(began) > time.Minute {
				b.Fatalf("100 services not ready after a minute (%d)", n)
			}
			time.Sleep(2 * time.Millisecond)
		}
		// Steady state, as a user would see it a moment later.
		b.StopTimer()
		time.Sleep(500 * time.Millisecond)
		b.StartTimer()
		rss := vmRSS(d.Process.Pid)
		began = time.Now()
		res, err := cl.Shutdown(ctx)
		took := time.Since(began)
		d.Wait()
		if err != nil || len(res.Survivors) > 0 || len(res.Stopped) != 100 {
			b.Fatalf("shutdown: %v %+v", err, res)
		}
		b.ReportMetric(float64(running.Milliseconds()), "ms-to-all-running")
		b.ReportMetric(float64(rss)/(1<<20), "daemon-RSS-MiB")
		b.ReportMetric(float64(took.Milliseconds()), "ms-shutdown")
	}
}

func vmRSS(pid int) int64 {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// BenchmarkStatusWhileBusy: `corral status` (the whole CLI process) while
// a service's readiness probe blocks (an exec probe that takes 30 s, as a
// slow model load). The owner goroutines hand such work out, so status
// reads snapshots; target ≤ 10 ms.
func BenchmarkStatusWhileBusy(b *testing.B) {
	e := benchEnv(b, `
[services.loading]
command = ["{exe}", "sleep"]
env = { CORRAL_TESTPROC = "sleep" }
ready = { exec = ["/bin/sleep", "30"], timeout = "60s" }
[services.idle]
command = ["{exe}", "sleep"]
env = { CORRAL_TESTPROC = "sleep" }
`)
	cmd := e.command("up", "idle")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("up: %v\n%s", err, out)
	}
	cl := client.New(filepath.Join(e.dir, ".corral", "corral.sock"))
	go cl.Start(context.Background(), "loading", "", false)
	for {
		s, err := cl.Inspect(context.Background(), "loading")
		if err == nil && s.State == "starting" {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	b.ResetTimer()
	var ds []time.Duration
	for i := 0; i < b.N; i++ {
		ds = append(ds, runCLI(b, e, "status"))
	}
	b.ReportMetric(float64(median(ds).Microseconds())/1000, "median-ms")
}
