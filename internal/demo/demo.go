package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"

	"github.com/corral-sh/corral/internal/fixture"
	"github.com/corral-sh/corral/internal/procinfo"
	"github.com/corral-sh/corral/internal/render"
	"github.com/corral-sh/corral/proctree"
)

// Options configure Run.
type Options struct {
	Containment proctree.Containment
	// Timeout bounds the whole demo.
	Timeout time.Duration
}

// Result is what the demo proved.
type Result struct {
	Mechanism   proctree.Mechanism
	NaiveLeft   int // processes a kill of the tracked PID left running
	Members     int // members of the service's tree when first ready
	Left        int // processes of any instance alive after the shutdown
	NaiveReport proctree.StopReport
	Restarts    int   // restarts done through the daemon
	Counts      []int // member count after the first start and each restart
}

// ErrLeft is returned when processes survived the stop.
var ErrLeft = errors.New("demo: processes survived the stop")

// Run runs the demo, writing a human-readable account to w.
func Run(ctx context.Context, w io.Writer, opts Options) (Result, error) {
	if opts.Timeout == 0 {
		opts.Timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	var res Result

	fmt.Fprintln(w, "corral demo: a WebUI-like tree — sh → webui leader → 4 workers (one double-forks a")
	fmt.Fprintln(w, "setsid daemon) + a respawner that replaces its child within milliseconds + a TERM-ignorer.")
	fmt.Fprintln(w)

	// 1. The naive launcher: track one PID, kill it.
	fmt.Fprintln(w, "1) What a launcher that tracks one PID does: kill it.")
	tr, ms, err := startTree(ctx, opts)
	if err != nil {
		return res, err
	}
	res.Mechanism = tr.Mechanism()
	if p, err := os.FindProcess(tr.PID()); err == nil {
		p.Kill()
	}
	select {
	case <-tr.Exited():
	case <-ctx.Done():
		return res, fmt.Errorf("demo: leader did not exit after SIGKILL: %w", ctx.Err())
	}
	res.NaiveLeft = len(carriers(tr.ID()))
	fmt.Fprintf(w, "   killed pid %d (the shell wrapper, of %d processes): %d processes of the tree keep running.\n",
		tr.PID(), len(ms), res.NaiveLeft)
	res.NaiveReport, err = tr.Stop(ctx, syscall.SIGTERM, 500*time.Millisecond)
	if err != nil {
		return res, fmt.Errorf("demo: cleaning up the naive run: %w", err)
	}
	fmt.Fprintf(w, "   corral's container (%s) still held all of them; stopped: %d left.\n\n",
		tr.Mechanism(), len(carriers(tr.ID())))

	// 2. corral as users meet it: the daemon, a service, restarts, shutdown.
	if err := runDaemon(ctx, w, opts, &res); err != nil {
		return res, err
	}
	if res.Left != 0 || res.NaiveLeft == 0 || res.Restarts == 0 {
		return res, ErrLeft
	}
	return res, nil
}

func startTree(ctx context.Context, opts Options) (*proctree.Tree, []proctree.Process, error) {
	cmd := fixture.ShellWrapped("webui", "--termignore")
	started := fixture.NewLineWaiter(fixture.TreeStarted)
	cmd.Stdout = started
	tr, err := proctree.Start(cmd, proctree.Options{Containment: opts.Containment, Service: "demo"})
	if err != nil {
		return nil, nil, err
	}
	select {
	case <-started.Seen:
	case <-ctx.Done():
		tr.Stop(context.Background(), syscall.SIGKILL, 0)
		return nil, nil, fmt.Errorf("demo: the fixture tree did not start: %w", ctx.Err())
	}
	ms, err := tr.Members()
	if err != nil {
		tr.Stop(context.Background(), syscall.SIGKILL, 0)
		return nil, nil, err
	}
	return tr, ms, nil
}

// carriers lists live processes carrying the marker, by a scan that does
// not go through proctree.
func carriers(id string) []procinfo.Stat {
	found, _ := procinfo.Carriers(func(m string) bool { return m == id })
	return found[id]
}

func printTree(w io.Writer, ms []proctree.Process, leader int) {
	procs := make([]render.Proc, len(ms))
	for i, m := range ms {
		procs[i] = render.Proc{PID: m.PID, PPID: m.PPID, PGID: m.PGID, Cmdline: m.Cmdline, RSS: m.RSS}
	}
	render.Tree(w, "     ", procs, leader)
}

func human(b int64) string { return render.Bytes(b) }
