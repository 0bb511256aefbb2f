package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/corral-sh/corral/client"
	"github.com/corral-sh/corral/internal/config"
	"github.com/corral-sh/corral/internal/logs"
)

// corral logs [SERVICE|@GROUP...]: one service's output, or several
// services' (all of them without a name) merged by time, each line headed
// by its service's name, as overmind and foreman show them.

type logsFlags struct {
	follow     bool
	lines      string // a count, or "all"
	since      string
	timestamps bool
	noColor    bool
}

// logsLong is logs' help: what -n 0 and "all kept" mean.
const logsLong = `Prints the output corral captured: of one service, or of several (a @GROUP,
or every service when none is named) merged by time, each line headed by
its service's name.

-n N prints the last N lines (default 100). "All kept" (-n all, or -n 0
without -f) is, with a daemon, what it keeps in memory per service: the
last 5000 lines, at most 1 MiB of them, unless logs = { lines, memory }
says otherwise; without a daemon, everything in the service's log files
on disk (the file and its rotated copies). As tail does, -f -n 0 prints
only the lines that come from now on; -f -n all prints all kept, then
follows. A follow ends when the daemon shuts down (exit 0, saying so on
stderr).

--since takes a duration ("10m": lines of the last ten minutes) or a time
(RFC 3339, "2026-12-02T10:00:00Z", or local "2026-12-02 10:00"); with it,
-n defaults to all.

Lines are "NAME | text" for stdout and "NAME ! text" for stderr when names
or times (-t) head them; a single service's lines without -t are the text
alone. On a terminal, names are coloured (not with NO_COLOR set or
--no-color); --json gives every line as {service, seq, time, stream, text}.`

func addLogsCommand(root *cobra.Command, g *globals) {
	var f logsFlags
	cmd := &cobra.Command{
		Use:   "logs [SERVICE|@GROUP...]",
		Short: "Captured output of a service, or of all of them merged by time (-f follows); without a daemon, the log files on disk",
		Long:  logsLong,
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.runLogs(cmd, args, f)
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&f.follow, "follow", "f", false, "keep printing new lines (with -n 0: only new lines)")
	fl.StringVarP(&f.lines, "lines", "n", "100", `lines from the past to print: a number, or "all" for all kept (0: all kept, or with -f none)`)
	fl.StringVar(&f.since, "since", "", `only lines from this time on: a duration ("10m") or a time ("2026-12-02T10:00:00Z", "2026-12-02 10:00")`)
	fl.BoolVarP(&f.timestamps, "timestamps", "t", false, "show each line's time")
	fl.BoolVar(&f.noColor, "no-color", false, "no colours, even on a terminal")
	cmd.ValidArgsFunction = g.completeServices(0)
	root.AddCommand(cmd)
}

// tail says how many past lines a logs command wants: n, or all (-1).
func (f logsFlags) tail(cmd *cobra.Command) (int, error) {
	s := strings.TrimSpace(f.lines)
	if s == "all" {
		return -1, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, usageErr("logs -n %s: give a number of lines (0 or more) or all", f.lines)
	}
	if n == 0 && !f.follow {
		return -1, nil // all kept, as before
	}
	if f.since != "" && !cmd.Flags().Changed("lines") {
		return -1, nil
	}
	return n, nil
}

// parseSince reads --since: a duration back from now, or a time.
func parseSince(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02T15:04", "2006-01-02 15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, usageErr(`logs --since %s: give a duration ("10m", "2h") or a time ("2026-12-02T10:00:00Z", "2026-12-02 10:00")`, s)
}

func (g *globals) runLogs(cmd *cobra.Command, args []string, f logsFlags) error {
	n, err := f.tail(cmd)
	if err != nil {
		return err
	}
	var since time.Time
	if f.since != "" {
		if since, err = parseSince(f.since, time.Now()); err != nil {
			return err
		}
	}
	names, err := g.expand(args)
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	p := &logPrinter{out: out, json: g.json, timestamps: f.timestamps, since: since,
		color: !f.noColor && os.Getenv("NO_COLOR") == "" && colorTerminal(out),
		multi: len(args) == 0 || len(names) != 1 || hasGroupRef(args)}
	cl := g.client()
	ctx := cmd.Context()
	if len(args) == 0 {
		list, err := cl.List(ctx, false)
		if errors.Is(err, client.ErrNoDaemon) {
			return g.offlineLogsAll(p, cmd.ErrOrStderr(), err, n, f.follow, g.upCommand(cmd))
		}
		if err != nil {
			return err
		}
		for _, s := range list {
			names = append(names, s.Name)
		}
	}
	p.setNames(names)
	// The past of every service, merged by time, then (-f) what comes.
	past := make([][]client.LogLine, len(names))
	after := make([]uint64, len(names))
	for i, name := range names {
		want := n
		if n == 0 {
			want = 1 // only new lines: the last one's number says where they start
		}
		err := cl.LogsWith(ctx, name, client.StreamOptions{N: max(want, 0)}, func(l client.LogLine) error {
			past[i] = append(past[i], l)
			return nil
		})
		if errors.Is(err, client.ErrNoDaemon) && len(args) > 0 {
			if len(names) == 1 && !hasGroupRef(args) {
				return g.offlineLogs(p, cmd.ErrOrStderr(), err, name, n, f.follow, g.upCommand(cmd))
			}
			return g.offlineLogsAll(p, cmd.ErrOrStderr(), err, n, f.follow, g.upCommand(cmd), names...)
		}
		if err != nil {
			if len(names) > 1 {
				return fmt.Errorf("logs %s: %w", name, err)
			}
			return err
		}
		if k := len(past[i]); k > 0 {
			after[i] = past[i][k-1].Seq
		}
		if n == 0 {
			past[i] = nil
		}
	}
	if err := p.printMerged(names, past, n); err != nil {
		return err
	}
	if !f.follow {
		return nil
	}
	return g.followLogs(ctx, cmd.ErrOrStderr(), cl, p, names, after)
}

// followLogs follows every service from after its last line printed, until
// ctx ends or the daemon ends the streams (it shut down: exit 0, said on
// stderr).
func (g *globals) followLogs(ctx context.Context, errw io.Writer, cl *client.Client, p *logPrinter, names []string, after []uint64) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, len(names))
	for i, name := range names {
		go func() {
			o := client.StreamOptions{Follow: true, After: after[i]}
			if after[i] == 0 {
				o.N = 0 // none yet: all that comes
			}
			err := cl.LogsWith(ctx, name, o, func(l client.LogLine) error { return p.print(name, l) })
			if err != nil && len(names) > 1 {
				err = fmt.Errorf("logs %s: %w", name, err)
			}
			errs <- err
		}()
	}
	var first error
	for range names {
		if err := <-errs; err != nil && first == nil && ctx.Err() == nil {
			first = err
			cancel() // one stream ended badly: stop the others
		}
	}
	switch {
	case ctx.Err() != nil:
		return nil // interrupted
	case first != nil:
		return first
	}
	// Every stream ended cleanly: the daemon ended them as it shut down.
	fmt.Fprintln(errw, "corral: the daemon shut down; no more lines will come")
	return nil
}

// logPrinter prints lines of one or several services.
type logPrinter struct {
	out        io.Writer
	json       bool
	timestamps bool
	color      bool
	multi      bool      // a name column
	since      time.Time // zero: no bound

	mu     sync.Mutex
	width  int
	colors map[string]string
}

// The name column's colours, by a service's place among those shown.
var nameColors = []string{"\x1b[36m", "\x1b[33m", "\x1b[32m", "\x1b[35m", "\x1b[34m", "\x1b[96m", "\x1b[93m", "\x1b[92m", "\x1b[95m", "\x1b[94m"}

const (
	colorReset = "\x1b[0m"
	colorErr   = "\x1b[31m"
)

func (p *logPrinter) setNames(names []string) {
	p.colors = map[string]string{}
	for i, n := range names {
		p.width = max(p.width, len(n))
		p.colors[n] = nameColors[i%len(nameColors)]
	}
}

// printMerged prints the past lines of every service ordered by time (each
// service's own in its order), the last n of them (n < 0: all).
func (p *logPrinter) printMerged(names []string, past [][]client.LogLine, n int) error {
	type item struct {
		service string
		client.LogLine
	}
	var all []item
	for i, name := range names {
		for _, l := range past[i] {
			if p.keep(l) {
				all = append(all, item{name, l})
			}
		}
	}
	if len(names) > 1 {
		sort.SliceStable(all, func(a, b int) bool { return all[a].Time.Before(all[b].Time) })
	}
	if n >= 0 && len(all) > n {
		all = all[len(all)-n:]
	}
	for _, it := range all {
		if err := p.print(it.service, it.LogLine); err != nil {
			return err
		}
	}
	return nil
}

// keep applies --since (a line of unknown time is not known to be since).
func (p *logPrinter) keep(l client.LogLine) bool {
	return p.since.IsZero() || !l.Time.Before(p.since)
}

func (p *logPrinter) print(service string, l client.LogLine) error {
	if !p.keep(l) {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.json {
		return json.NewEncoder(p.out).Encode(struct {
			Service string `json:"service"`
			client.LogLine
		}{service, l})
	}
	var b strings.Builder
	if p.timestamps {
		if l.Time.IsZero() {
			b.WriteString(fmt.Sprintf("%-23s ", "-"))
		} else {
			b.WriteString(l.Time.Local().Format("2006-01-02 15:04:05.000 "))
		}
	}
	if p.multi {
		if p.color {
			b.WriteString(p.colors[service])
		}
		fmt.Fprintf(&b, "%-*s", p.width, service)
		if p.color {
			b.WriteString(colorReset)
		}
		b.WriteByte(' ')
	}
	if p.multi || p.timestamps {
		mark := "| "
		if l.Stream == "stderr" {
			mark = "! "
			if p.color {
				mark = colorErr + "!" + colorReset + " "
			}
		}
		b.WriteString(mark)
	}
	b.WriteString(l.Text)
	b.WriteByte('\n')
	_, err := io.WriteString(p.out, b.String())
	return err
}

// offlineLogs prints the last n lines (n < 0: all on disk) of a service's
// log files. An unknown service is a usage error; a service with no file
// (or no state directory) returns noDaemon itself.
func (g *globals) offlineLogs(p *logPrinter, errw io.Writer, noDaemon error, name string, n int, follow bool, up string) error {
	sk, skErr := config.ReadSketch(g.config)
	dir := filepath.Join(g.state(), "logs")
	known := skErr == nil && slices.Contains(sk.Names(), name)
	files := logs.Files(dir, name)
	if !validServiceName(name) || len(files) == 0 && skErr == nil && !known {
		if skErr != nil {
			return usageErr("unknown service %q", name)
		}
		return usageErr("unknown service %q%s (configured: %s)", name, config.DidYouMean(name, sk.Names()), strings.Join(sk.Names(), ", "))
	}
	if len(files) == 0 {
		return noDaemon
	}
	lines, err := logs.ReadTail(dir, name, max(n, 0), 0)
	if err != nil {
		return err
	}
	fmt.Fprintf(errw, "corral: %s; these lines of %s are from its log file on disk (%s)%s\n",
		noDaemonWhy(g.state()), name, filepath.Join(dir, name+".log"), followNote(follow, up))
	p.setNames([]string{name})
	return p.printMerged([]string{name}, [][]client.LogLine{diskLines(lines)}, n)
}

// offlineLogsAll prints the lines on disk of names (none: every service of
// the configuration, and any other service with a log file there), merged
// by time.
func (g *globals) offlineLogsAll(p *logPrinter, errw io.Writer, noDaemon error, n int, follow bool, up string, names ...string) error {
	dir := filepath.Join(g.state(), "logs")
	if len(names) == 0 {
		if sk, err := config.ReadSketch(g.config); err == nil {
			names = sk.Names()
		}
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if base, ok := strings.CutSuffix(e.Name(), ".log"); ok && e.Type().IsRegular() && !slices.Contains(names, base) && validServiceName(base) && !rotatedName(base) {
				names = append(names, base)
			}
		}
		sort.Strings(names)
	}
	var shown []string
	var past [][]client.LogLine
	for _, name := range names {
		if len(logs.Files(dir, name)) == 0 {
			continue
		}
		lines, err := logs.ReadTail(dir, name, max(n, 0), 0)
		if err != nil {
			return err
		}
		shown = append(shown, name)
		past = append(past, diskLines(lines))
	}
	if len(shown) == 0 {
		return noDaemon
	}
	fmt.Fprintf(errw, "corral: %s; these lines are from the log files on disk (%s)%s\n", noDaemonWhy(g.state()), dir, followNote(follow, up))
	p.setNames(shown)
	return p.printMerged(shown, past, n)
}

// rotatedName reports whether base (a file name without .log) is a rotated
// copy's (NAME-2026-01-02T10-00-00.000).
func rotatedName(base string) bool {
	const layout = "2006-01-02T15-04-05.000"
	if len(base) <= len(layout)+1 || base[len(base)-len(layout)-1] != '-' {
		return false
	}
	_, err := time.Parse(layout, base[len(base)-len(layout):])
	return err == nil
}

// diskLines numbers the lines read from a file, oldest first.
func diskLines(ls []logs.Line) []client.LogLine {
	out := make([]client.LogLine, len(ls))
	for i, l := range ls {
		out[i] = client.LogLine{Seq: uint64(i + 1), Time: l.Time, Stream: l.Stream, Text: l.Text}
	}
	return out
}

// colorTerminal reports whether w is a terminal that shows colours.
func colorTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && fileWidth(f) > 0 && enableColor(f)
}
