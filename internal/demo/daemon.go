package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/corral-sh/corral/client"
	"github.com/corral-sh/corral/internal/daemon"
	"github.com/corral-sh/corral/internal/fixture"
	"github.com/corral-sh/corral/internal/ipc"
	"github.com/corral-sh/corral/internal/render"
)

const restarts = 10

// runDaemon runs the real daemon code on a generated corral.toml whose
// service is the fixture tree serving HTTP (ready after 1 s), drives it
// through the public client, and verifies the shutdown independently.
func runDaemon(ctx context.Context, w io.Writer, opts Options, res *Result) error {
	dir, err := os.MkdirTemp("", "corral-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	toml := fmt.Sprintf(`# written by corral demo
[services.webui]
shell = "%s webui --http 127.0.0.1:%d --ready-after 1s"
env = { %s = "webui" }
ready = { http = "http://127.0.0.1:%d/", log = "Running on local URL", timeout = "30s", interval = "50ms" }
stop = { grace = "2s" }
restart = { policy = "always", backoff = "200ms" }
`, exe, port, fixture.Env, port)
	cfgPath := filepath.Join(dir, "corral.toml")
	if err := os.WriteFile(cfgPath, []byte(toml), 0o644); err != nil {
		return err
	}
	stateDir := filepath.Join(dir, ".corral")
	listening := make(chan struct{})
	type outcome struct {
		res any
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		r, err := daemon.Run(context.WithoutCancel(ctx), daemon.Options{
			ConfigPath: cfgPath, StateDir: stateDir, Containment: opts.Containment, Version: "demo",
			Listening: func() { close(listening) },
		})
		done <- outcome{r, err}
	}()
	select {
	case <-listening:
	case o := <-done:
		return fmt.Errorf("demo: daemon: %v", o.err)
	case <-ctx.Done():
		return ctx.Err()
	}
	cl := client.New(ipc.Path(stateDir))
	shutdown := func() (client.ShutdownResult, error) {
		r, err := cl.Shutdown(context.WithoutCancel(ctx))
		<-done
		return r, err
	}

	fmt.Fprintf(w, "2) corral as users meet it: the daemon runs service webui (the same tree less the TERM-ignorer, answering HTTP on port %d after 1 s).\n", port)
	began := time.Now()
	s, err := cl.Ensure(ctx, "webui", 30*time.Second)
	if err != nil {
		shutdown()
		return fmt.Errorf("demo: ensure: %w", err)
	}
	s, err = cl.Inspect(ctx, "webui")
	if err != nil {
		shutdown()
		return err
	}
	res.Members = s.MemberCount
	res.Counts = append(res.Counts, s.MemberCount)
	fmt.Fprintf(w, "   corral ensure webui: ready after %v (HTTP 200 and the log line), %s containment:\n", time.Since(began).Round(10*time.Millisecond), s.Mechanism)
	procs := make([]render.Proc, len(s.Members))
	for i, m := range s.Members {
		procs[i] = render.Proc{PID: m.PID, PPID: m.PPID, PGID: m.PGID, Cmdline: m.Cmdline, RSS: m.RSS}
	}
	render.Tree(w, "     ", procs, s.PID)
	fmt.Fprintf(w, "   corral restart webui, %d times (each: stop the whole tree, verify it empty, start):\n     processes:", restarts)
	for i := 0; i < restarts; i++ {
		if _, err := cl.Restart(ctx, "webui", "", true); err != nil {
			shutdown()
			return fmt.Errorf("demo: restart %d: %w", i+1, err)
		}
		s, err = cl.Inspect(ctx, "webui")
		if err != nil {
			shutdown()
			return err
		}
		res.Restarts++
		res.Counts = append(res.Counts, s.MemberCount)
		fmt.Fprintf(w, " %d", s.MemberCount)
	}
	fmt.Fprintln(w)
	var ids []string
	cl.Events(ctx, 0, false, func(e client.Event) error {
		if e.Kind == "spawn" {
			ids = append(ids, e.Instance)
		}
		return nil
	})
	r, err := shutdown()
	if err != nil {
		return fmt.Errorf("demo: shutdown: %w", err)
	}
	left := 0
	for _, id := range ids {
		left += len(carriers(id))
	}
	res.Left = left + len(r.Survivors)
	fmt.Fprintf(w, "   corral shutdown: stopped %v, daemon's own check: %d survivors.\n", r.Stopped, len(r.Survivors))
	fmt.Fprintf(w, "   verified by a fresh scan of the process table: %d processes of the %d instances remain.\n", left, len(ids))
	for _, c := range res.Counts {
		if c != res.Counts[0] {
			return errors.New("demo: the process count changed across restarts")
		}
	}
	return nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
