package service

import (
	"context"
	"net"
	"sort"
	"syscall"
	"testing"
	"time"

	"github.com/corral-sh/corral/internal/config"
	"github.com/corral-sh/corral/internal/journal"
	"github.com/corral-sh/corral/internal/restart"
	"github.com/corral-sh/corral/internal/testproc"
)

// BenchmarkCrashToReady: a server that needs 1 s to answer its readiness
// probe is killed (SIGKILL of its main process) three times in a row; the
// figures are the time from the kill to the next instance's readiness, for
// the first and the third crash, with the default restart policy (its
// first restart waits up to 100ms) and with backoff = "0s" (the floor:
// what corral itself costs). The server says when it listens, which
// rechecks readiness at once. (PM2 1.07 s, supervisord 1.1 s, runit 1.1 s
// on the same kind of fixture.)
func BenchmarkCrashToReady(b *testing.B) {
	for _, backoff := range []time.Duration{restart.Defaults().Backoff, 0} {
		b.Run("backoff="+backoff.String(), func(b *testing.B) { crashToReady(b, backoff) })
	}
}

func crashToReady(b *testing.B, backoff time.Duration) {
	var first, third []time.Duration
	for i := 0; i < b.N; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		cmd := testproc.Command("lateserver", addr, "1s")
		def := restart.Defaults()
		def.Backoff = backoff
		cfg := &config.Service{Name: "late", Argv: cmd.Args, Env: cmd.Env[len(cmd.Env)-2:], Lifetime: config.LifetimeLeader, StdinNull: true,
			Ready:   config.Probe{HTTP: "http://" + addr + "/", Timeout: 20 * time.Second, Interval: 100 * time.Millisecond},
			Restart: def, Stop: config.Stop{Signal: syscall.SIGTERM, Grace: 2 * time.Second}}
		bus := journal.NewBus(1000, nil)
		s := New(cfg, Deps{Bus: bus})
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		st, err := s.Ensure(ctx)
		if err != nil {
			b.Fatal(err)
		}
		_, events, unsub := bus.Subscribe(0)
		for crash := 1; crash <= 3; crash++ {
			began := time.Now()
			syscall.Kill(st.PID, syscall.SIGKILL)
			for {
				e := <-events
				if e.Kind == journal.Ready && e.Instance != st.Instance {
					break
				}
			}
			took := time.Since(began)
			st = s.Status()
			switch crash {
			case 1:
				first = append(first, took)
			case 3:
				third = append(third, took)
			}
		}
		unsub()
		s.Shutdown(ctx)
		s.Close()
		cancel()
	}
	b.ReportMetric(median(first).Seconds(), "s-crash1")
	b.ReportMetric(median(third).Seconds(), "s-crash3")
	b.ReportMetric(0, "ns/op")
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

// BenchmarkStatusWhileBusy: Status of a service whose owner goroutine has
// handed out blocking work: a preflight stuck in the port owner lookup
// (reclaim, a foreign server's probe) or a readiness probe. Target ≤ 10 ms;
// the old loop waited behind up to 10 s of reclaim.
func BenchmarkStatusWhileBusy(b *testing.B) {
	for _, busy := range []string{"preflight", "probing"} {
		b.Run(busy, func(b *testing.B) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer ln.Close()
			cmd := testproc.Command("sleep")
			cfg := &config.Service{Name: "busy", Argv: cmd.Args, Env: cmd.Env[len(cmd.Env)-2:], Lifetime: config.LifetimeLeader, StdinNull: true,
				Restart: restart.Defaults(), Stop: config.Stop{Signal: syscall.SIGTERM, Grace: time.Second}}
			entered, release := make(chan struct{}, 1), make(chan struct{})
			deps := Deps{}
			if busy == "preflight" {
				cfg.Ready = config.Probe{TCP: ln.Addr().String(), Timeout: time.Second, Interval: 10 * time.Millisecond}
				deps.OwnerOf = func(int) string { entered <- struct{}{}; <-release; return "" }
			} else {
				// A readiness probe that never passes: an exec probe that
				// blocks, as a slow model load does.
				cfg.Ready = config.Probe{Exec: []string{"/bin/sleep", "30"}, Timeout: time.Minute, Interval: 10 * time.Millisecond}
				close(entered)
			}
			s := New(cfg, deps)
			go s.Start(context.Background(), "", false)
			<-entered
			want := Checking
			if busy == "probing" {
				want = Starting
				for s.Status().State != Starting {
					time.Sleep(time.Millisecond)
				}
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if st := s.Status(); st.State != want {
					b.Fatalf("state %s", st.State)
				}
			}
			b.StopTimer()
			close(release)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			s.Shutdown(ctx)
			s.Close()
		})
	}
}
