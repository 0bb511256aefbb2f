package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/corral-sh/corral/client"
	"github.com/corral-sh/corral/internal/render"
)

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func ensureAll(ctx context.Context, w io.Writer, cl *client.Client, names []string, timeout time.Duration) error {
	var mu sync.Mutex
	var wg sync.WaitGroup
	var errs serviceErrors
	o := client.StartOptions{Timeout: daemonTimeout(ctx, timeout)}
	for _, n := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := cl.EnsureWith(ctx, n, o)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, serviceError{n, err})
				return
			}
			fmt.Fprintf(w, "%s: %s%s\n", n, s.State, describeInstance(s))
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		sort.Slice(errs, func(i, j int) bool { return errs[i].name < errs[j].name })
		return errs
	}
	return nil
}

// daemonTimeout is the bound to hand the daemon for a wait within ctx: at
// most timeout, and short enough that the daemon's answer (which says what
// the service was waiting for) arrives before ctx ends.
func daemonTimeout(ctx context.Context, timeout time.Duration) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		left := time.Until(dl)
		left -= min(time.Second, left/10)
		if left < timeout {
			timeout = max(left, time.Millisecond)
		}
	}
	return timeout
}

// serviceError is a failure of one service among several; it keeps the
// daemon's error (its code decides the exit code).
type serviceError struct {
	name string
	err  error
}

func (e serviceError) Error() string {
	// The daemon's messages mostly name the service already.
	if msg := e.err.Error(); strings.HasPrefix(msg, "service "+e.name+": ") || strings.HasPrefix(msg, fmt.Sprintf("unknown service %q", e.name)) {
		return msg
	}
	return e.name + ": " + e.err.Error()
}

func (e serviceError) Unwrap() error { return e.err }

type serviceErrors []serviceError

func (es serviceErrors) Error() string {
	msgs := make([]string, len(es))
	for i, e := range es {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "; ")
}

func (es serviceErrors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

func describeInstance(s client.Service) string {
	switch {
	case s.State == "external":
		return fmt.Sprintf(" (served by pids %v, not started by corral)", s.ExternalPIDs)
	case s.PID != 0:
		return fmt.Sprintf(" (pid %d, %d processes, %s)", s.PID, s.MemberCount, render.Bytes(s.RSS))
	}
	return ""
}

func addServiceCommands(root *cobra.Command, g *globals) {
	root.PersistentFlags().BoolVar(&g.json, "json", false, "print JSON instead of text")

	var ensureTimeout time.Duration
	var ensureOpts client.StartOptions
	var ensureEnv []string
	ensure := &cobra.Command{
		Use:   "ensure SERVICE|@GROUP" + launchUsage,
		Short: "Make a service ready: start it if needed, wait for readiness; concurrent calls coalesce",
		Args:  launchArgs(true),
		RunE: func(cmd *cobra.Command, args []string) error {
			// The daemon gives up first and says what it waited for.
			ctx, cancel := context.WithTimeout(cmd.Context(), ensureTimeout+5*time.Second)
			defer cancel()
			o := ensureOpts
			o.Timeout = ensureTimeout
			if err := launchOptions(cmd, args, ensureEnv, &o); err != nil {
				return err
			}
			names, err := g.expand(services(cmd, args))
			if err != nil {
				return err
			}
			if len(names) != 1 || hasGroupRef(args) {
				// A group: each of its services, at once.
				if o.Args != nil || o.Env != nil {
					return usageErr("ensure: arguments after -- and --env are one instance's: name one SERVICE, not the group %s", strings.Join(services(cmd, args), " "))
				}
				return ensureAll(ctx, cmd.OutOrStdout(), g.client(), names, ensureTimeout)
			}
			s, err := g.client().EnsureWith(ctx, names[0], o)
			if err != nil {
				return err
			}
			if g.json {
				return writeJSON(cmd.OutOrStdout(), s)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %s%s\n", s.Name, s.State, describeInstance(s))
			return nil
		},
	}
	ensure.Flags().DurationVar(&ensureTimeout, "timeout", 5*time.Minute, "give up after this long")
	ensure.Flags().StringVar(&ensureOpts.Profile, "profile", "", "named argument set from the service's profiles")
	ensure.Flags().BoolVar(&ensureOpts.RestartIfDifferent, "restart-if-different", false, "restart a running instance of another profile, arguments or env instead of failing")
	ensure.Flags().StringArrayVar(&ensureEnv, "env", nil, "NAME=value in this instance's environment, over the service's env (repeatable)")
	root.AddCommand(ensure)

	for _, verb := range []string{"start", "restart"} {
		var wait, restartIfDifferent bool
		var profile string
		var env []string
		c := &cobra.Command{
			Use:   verb + " SERVICE|@GROUP..." + launchUsage,
			Short: map[string]string{"start": "Start services; returns once each runs (--wait: once ready)", "restart": "Stop services completely, then start them (--profile applies a named argument set)"}[verb],
			Args:  launchArgs(false),
			RunE: func(cmd *cobra.Command, args []string) error {
				cl := g.client()
				o := client.StartOptions{Profile: profile, Wait: wait, RestartIfDifferent: restartIfDifferent}
				if err := launchOptions(cmd, args, env, &o); err != nil {
					return err
				}
				names, err := g.expand(services(cmd, args))
				if err != nil {
					return err
				}
				if (o.Args != nil || o.Env != nil) && len(names) != 1 {
					return usageErr("%s: arguments after -- and --env are one instance's: name one SERVICE, not a group of %d", verb, len(names))
				}
				for _, n := range names {
					var s client.Service
					var err error
					if verb == "start" {
						s, err = cl.StartWith(cmd.Context(), n, o)
					} else {
						s, err = cl.RestartWith(cmd.Context(), n, o)
					}
					if err != nil {
						return fmt.Errorf("%s %s: %w", verb, n, err)
					}
					if g.json {
						writeJSON(cmd.OutOrStdout(), s)
					} else {
						fmt.Fprintf(cmd.OutOrStdout(), "%s: %s%s\n", s.Name, s.State, describeInstance(s))
					}
				}
				return nil
			},
		}
		c.Flags().BoolVar(&wait, "wait", false, "return once ready")
		c.Flags().StringVar(&profile, "profile", "", "named argument set from the service's profiles")
		c.Flags().StringArrayVar(&env, "env", nil, "NAME=value in this instance's environment, over the service's env (repeatable)")
		if verb == "start" {
			c.Flags().BoolVar(&restartIfDifferent, "restart-if-different", false, "restart a running instance of another profile, arguments or env instead of failing")
		}
		root.AddCommand(c)
	}

	root.AddCommand(&cobra.Command{
		Use:   "stop SERVICE|@GROUP...",
		Short: "Stop services; returns once each tree is verified empty",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl := g.client()
			names, err := g.expand(args)
			if err != nil {
				return err
			}
			var unverified []string
			for _, n := range names {
				s, err := cl.Stop(cmd.Context(), n)
				if err != nil {
					return fmt.Errorf("stop %s: %w", n, err)
				}
				if r := s.LastStop; r != nil && r.Unverified != "" {
					unverified = append(unverified, s.Name)
				}
				if g.json {
					writeJSON(cmd.OutOrStdout(), s)
					continue
				}
				msg := ""
				if r := s.LastStop; r != nil {
					msg = fmt.Sprintf(": %d signalled, %d exited, %d killed in %v; 0 left", r.Signalled, r.Exited, r.Killed, r.Duration.Round(time.Millisecond))
					if r.Unverified != "" {
						// None found, but the tier cannot prove none is left.
						msg = fmt.Sprintf(": %d signalled, %d exited, %d killed in %v; none found, UNVERIFIED: %s", r.Signalled, r.Exited, r.Killed, r.Duration.Round(time.Millisecond), r.Unverified)
					}
				}
				if gr := s.LastStopGPU; gr != nil {
					if gr.Released {
						msg += fmt.Sprintf("; GPU memory released (%s held by %d members)", render.Bytes(gr.Held), gr.Holders)
					} else {
						msg += fmt.Sprintf("; GPU memory NOT released yet: nvidia-smi still lists pids %v", gr.Left)
					}
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: %s%s\n", s.Name, s.State, msg)
			}
			if len(unverified) > 0 {
				return fmt.Errorf("%w: the stop of %s could not be proved complete (corral doctor lists what this tier cannot prove)", errUnverified, strings.Join(unverified, ", "))
			}
			return nil
		},
	})

	root.AddCommand(&cobra.Command{
		Use:   "status [SERVICE|@GROUP]",
		Short: "Services, states, instances; with a SERVICE, its member tree",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl := g.client()
			out := cmd.OutOrStdout()
			var only []string // a group: its services' lines of the table
			if hasGroupRef(args) {
				names, err := g.expand(args)
				if err != nil {
					return err
				}
				only, args = names, nil
			}
			if len(args) == 1 {
				s, err := cl.Inspect(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				if g.json {
					return writeJSON(out, s)
				}
				// On a terminal, each line is cut to its width.
				fw := newFitWriter(out)
				printService(fw, s)
				return fw.Flush()
			}
			list, err := cl.List(cmd.Context(), false)
			if err != nil {
				return err
			}
			if only != nil {
				list = slices.DeleteFunc(list, func(s client.Service) bool { return !slices.Contains(only, s.Name) })
			}
			if g.json {
				return writeJSON(out, list)
			}
			// On a terminal, each line is cut to its width (the reason last).
			fw := newFitWriter(out)
			defer fw.Flush()
			tw := tabwriter.NewWriter(fw, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SERVICE\tSTATE\tPID\tPROCS\tRSS\tUPTIME\tRESTARTS\tLAST EXIT\tREASON")
			now := time.Now()
			for _, s := range list {
				pid, up := "-", "-"
				if s.PID != 0 {
					pid = fmt.Sprint(s.PID)
					up = render.Duration(now.Sub(s.StartedAt))
				}
				last := "-"
				if s.LastExit != nil {
					last = s.LastExit.Description
				}
				reason := s.Reason
				if reason == string(s.State) {
					reason = ""
				}
				procs, rss := fmt.Sprint(s.MemberCount), render.Bytes(s.RSS)
				if l := s.Limits; l != nil {
					if l.Processes > 0 {
						procs += fmt.Sprintf("/%d", l.Processes)
					}
					if l.Memory > 0 {
						rss += "/" + render.Bytes(l.Memory)
					}
				}
				if s.Frozen {
					reason = "FROZEN " + reason
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", s.Name, s.State, pid, procs, rss, up, s.Restarts, last, reason)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			// Strays belong to the daemon, not to a service's line: orphans
			// re-parented to it that no live tree holds (GET /v1/daemon).
			if d, err := cl.Daemon(cmd.Context()); err == nil && len(d.Strays) > 0 {
				printStrays(fw, d.Strays, now)
			}
			return nil
		},
	})

	addLogsCommand(root, g)

	var evFollow bool
	var evN int
	events := &cobra.Command{
		Use:   "events",
		Short: "What happened: spawns, readiness, exits, stops, restarts, failures (-f follows); without a daemon, the journal on disk",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := cmd.OutOrStdout()
			err := g.client().Events(cmd.Context(), evN, evFollow, func(e client.Event) error { return printEvent(out, e, g.json) })
			if errors.Is(err, client.ErrNoDaemon) {
				return g.offlineEvents(out, cmd.ErrOrStderr(), err, evN, evFollow, g.upCommand(cmd))
			}
			return err
		},
	}
	events.Flags().BoolVarP(&evFollow, "follow", "f", false, "keep printing new events")
	events.Flags().IntVarP(&evN, "lines", "n", 100, "events from the past to print (0: all kept)")
	root.AddCommand(events)
}

func printService(w io.Writer, s client.Service) {
	fmt.Fprintf(w, "%s: %s", s.Name, s.State)
	if s.Code != "" {
		fmt.Fprintf(w, " [%s]", s.Code)
	}
	if s.Reason != "" && s.Reason != s.State {
		fmt.Fprintf(w, " (%s)", s.Reason)
	}
	fmt.Fprintln(w)
	if s.Instance != "" {
		fmt.Fprintf(w, "  instance %s, %s, started %s", s.Instance, s.Mechanism, s.StartedAt.Format(time.RFC3339))
		if s.Profile != "" {
			fmt.Fprintf(w, ", profile %s", s.Profile)
		}
		fmt.Fprintln(w)
		// Launch options; environment values are not shown (secrets).
		if len(s.Args) > 0 {
			fmt.Fprintf(w, "  launched with arguments %q\n", s.Args)
		}
		if len(s.EnvKeys) > 0 {
			fmt.Fprintf(w, "  launched with environment %s (values not shown)\n", strings.Join(s.EnvKeys, ", "))
		}
		fmt.Fprintf(w, "  main pid %d", s.PID)
		if s.MainFrom != "" {
			fmt.Fprintf(w, " (%s)", s.MainFrom)
		}
		if s.PreviousPID != 0 {
			fmt.Fprintf(w, ", handed over from pid %d", s.PreviousPID)
		}
		if s.Leader != 0 && s.Leader != s.PID {
			fmt.Fprintf(w, ", leader pid %d", s.Leader)
		}
		fmt.Fprintln(w)
	}
	if l := s.Limits; l != nil {
		fmt.Fprintf(w, "  limits: processes %d, memory %s, fork rate %.0f/s, on limit: %s", l.Processes, render.Bytes(l.Memory), l.ForkRate, l.OnLimit)
		if s.KernelLimit {
			fmt.Fprint(w, " (process limit enforced by the kernel)")
		}
		if s.Frozen {
			fmt.Fprint(w, "; FROZEN by the watchdog")
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "  starts %d, restarts %d", s.Starts, s.Restarts)
	if s.LastExit != nil {
		fmt.Fprintf(w, ", last exit: %s at %s", s.LastExit.Description, s.LastExit.At.Format("15:04:05"))
	}
	fmt.Fprintln(w)
	if len(s.ExternalPIDs) > 0 {
		fmt.Fprintf(w, "  served by pids %v, which corral did not start and will never stop\n", s.ExternalPIDs)
	}
	if len(s.Members) > 0 {
		fmt.Fprintf(w, "  %d processes, %s resident:\n", len(s.Members), render.Bytes(s.RSS))
		procs := make([]render.Proc, len(s.Members))
		for i, m := range s.Members {
			procs[i] = render.Proc{PID: m.PID, PPID: m.PPID, PGID: m.PGID, Cmdline: m.Cmdline, RSS: m.RSS}
		}
		// The leader's pid is its process group: a root outside it was
		// re-parented (the main process may be one).
		leader := s.Leader
		if leader == 0 {
			leader = s.PID
		}
		// Command lines fill the terminal's width, and are whole elsewhere.
		render.TreeWidth(w, "    ", procs, leader, termWidth(w))
	}
}

// printStrays lists the daemon's strays under the services' table.
func printStrays(w io.Writer, strays []client.Stray, now time.Time) {
	fmt.Fprintf(w, "\nSTRAYS: %d processes re-parented to corral outside every live tree (stopped with their tree when attributed, else at shutdown):\n", len(strays))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  PID\tPPID\tSTARTED\tTREE\tCOMMAND")
	for _, s := range strays {
		tree := "unknown"
		if s.Instance != "" {
			tree = fmt.Sprintf("%s@%s (by %s)", s.Service, s.Instance, s.AttributedBy)
			if s.Service == "" {
				tree = fmt.Sprintf("instance %s (by %s)", s.Instance, s.AttributedBy)
			}
		}
		fmt.Fprintf(tw, "  %d\t%d\t%s ago\t%s\t%s\n", s.PID, s.PPID, render.Duration(now.Sub(s.Start)), tree, strings.Join(s.Cmdline, " "))
	}
	tw.Flush()
}
