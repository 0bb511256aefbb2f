package main

import (
	"context"
	"io"
	"os"
	"runtime"
	"time"

	"github.com/spf13/cobra"

	"github.com/corral-sh/corral/client"
	"github.com/corral-sh/corral/internal/top"
)

// topFlags are corral top's flags.
type topFlags struct {
	interval time.Duration
	once     bool
	json     bool
}

// minTopInterval: a status with member trees reads every member's /proc
// files; more than ten a second would cost the daemon for nothing a
// person can read.
const minTopInterval = 100 * time.Millisecond

func addTopCommand(root *cobra.Command, g *globals) {
	var f topFlags
	c := &cobra.Command{
		Use:   "top",
		Short: "Live view in the terminal: states, member trees, RSS, CPU, GPU memory, events; r/s/S restart, stop, start",
		Long: `top is the dashboard's live view in the terminal, for a server reached over
ssh: a table of the services (state, main pid, members, resident memory,
CPU% over the last interval, GPU memory where nvidia-smi answers, uptime,
restarts), the selected service's member tree, and the latest events.

Keys: up/down (or k/j) select a service, enter shows or hides its member
tree, r restarts it, s stops it, S starts it (each asks for a y first),
q or ctrl+c quits. A daemon that stops answering (shut down, restarted,
hung) is said in the first line, and top keeps asking every interval and
follows the new daemon's events; it never quits by itself.

Without a terminal on standard output (a pipe, a file), or with --once,
top prints one snapshot and exits: the table and the last events. It
reads the services twice, --interval apart, so that CPU% is measured as
in the live view. --json prints that snapshot as JSON.`,
		Example: `  corral top                           # the live view; q quits
  corral top --interval 2s
  corral top --once                    # one snapshot, as for a pipe
  corral top | head -5
  corral top --json | jq '.cpu_percent'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.interval < minTopInterval {
				return usageErr("top --interval %v: must be %v or more", f.interval, minTopInterval)
			}
			f.json = g.json
			out := cmd.OutOrStdout()
			var t *top.Terminal
			if file, ok := out.(*os.File); ok && fileWidth(file) > 0 {
				t = &top.Terminal{Out: file}
			}
			return runTop(cmd.Context(), g.client(), out, t, f)
		},
	}
	c.Flags().DurationVar(&f.interval, "interval", time.Second, "how often the services are read")
	c.Flags().BoolVar(&f.once, "once", false, "print one snapshot and exit (what top does without a terminal)")
	root.AddCommand(c)
}

// runTop is corral top once its flags are read: the live view on t, or
// one snapshot on out when there is no terminal (t nil), with --once or
// with --json.
func runTop(ctx context.Context, d top.Daemon, out io.Writer, t *top.Terminal, f topFlags) error {
	// macOS reports no processor time per process (0): a CPU% would be a
	// made-up 0%.
	o := top.Options{Interval: f.interval, NoCPU: runtime.GOOS == "darwin"}
	if t == nil || f.once || f.json {
		if !f.json {
			return top.Once(ctx, out, d, termWidth(out), o)
		}
		m, err := top.Sample(ctx, d, o)
		if err != nil {
			return err
		}
		// No value is ever null (docs/api.md, Values): empty lists are [].
		j := topJSON{At: m.At(), Services: m.Services(), CPUPercent: m.CPU(), Events: m.Events()}
		if j.Services == nil {
			j.Services = []client.Service{}
		}
		if j.Events == nil {
			j.Events = []client.Event{}
		}
		return writeJSON(out, j)
	}
	o.Color = true
	return top.Run(ctx, d, *t, o)
}

// topJSON is corral top --json: the services as status --json gives them
// (with their members), and the CPU% top measured for each running one.
type topJSON struct {
	At         time.Time          `json:"at"`
	Services   []client.Service   `json:"services"`
	CPUPercent map[string]float64 `json:"cpu_percent"`
	Events     []client.Event     `json:"events"`
}
