package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/corral-sh/corral/client"
	"github.com/corral-sh/corral/internal/bootsvc"
	"github.com/corral-sh/corral/internal/daemon"
	"github.com/corral-sh/corral/internal/diag"
	"github.com/corral-sh/corral/internal/ipc"
	"github.com/corral-sh/corral/internal/logs"
	"github.com/corral-sh/corral/internal/statedir"
	"github.com/corral-sh/corral/internal/supervisor"
)

func (g *globals) state() string {
	if g.stateDir != "" {
		return g.stateDir
	}
	return daemon.DefaultStateDir(g.config)
}

// client names the state directory too, so that a lock held without a
// socket is reported with its holder on every platform (a pipe name does
// not say which directory it serves).
func (g *globals) client() *client.Client {
	return client.NewWithOptions(ipc.Path(g.state()), client.Options{StateDir: g.state()})
}

func addDaemonCommands(root *cobra.Command, g *globals) {
	var exitWith int
	var noKeeper, printEndpoint bool
	var logFile string
	daemonCmd := &cobra.Command{
		Use:   "daemon",
		Short: "Run the supervisor in the foreground (SIGHUP reloads, SIGTERM/SIGINT shut down verified)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if printEndpoint {
				// For clients in other languages: where a daemon of this
				// state directory listens, computed here so that no one
				// re-implements ipc.Path (a hash of the path on Windows).
				stateDir, _ := filepath.Abs(g.state())
				return writeJSON(cmd.OutOrStdout(), daemon.EndpointFor(stateDir))
			}
			c, err := g.parseContainment()
			if err != nil {
				return err
			}
			if err := checkExitWith(cmd, exitWith); err != nil {
				return err
			}
			logOut, out := cmd.ErrOrStderr(), cmd.OutOrStdout()
			var lf *logs.File
			if logFile != "" {
				// Rotated (daemonlog.go); corral up asks for it.
				if lf, err = openDaemonLog(logFile); err != nil {
					return err
				}
				defer lf.Close()
				logOut, out = lf, lf
			}
			log := slog.New(slog.NewTextHandler(logOut, &slog.HandlerOptions{Level: slog.LevelInfo}))
			cfgPath, _ := filepath.Abs(g.config)
			stateDir, _ := filepath.Abs(g.state())
			o := daemon.Options{
				ConfigPath: cfgPath, StateDir: stateDir, Containment: c, Version: buildVersion(), Log: log,
				ExitWith: exitWith, LogFile: lf,
			}
			// On Windows the kernel kills every job when corral's handles
			// close, which is the keeper's job; and fd 3 cannot be handed on.
			if !noKeeper && runtime.GOOS != "windows" {
				o.Keeper = func() *exec.Cmd {
					exe, _ := os.Executable()
					k := exec.Command(exe, "__keeper", "--state-dir", stateDir)
					k.Env = keeperEnv()
					k.Stderr = cmd.ErrOrStderr()
					detach(k)
					return k
				}
			}
			// The daemon's own context ignores the CLI's signal handling:
			// SIGTERM and SIGINT mean a verified shutdown, which it runs.
			// Started by Windows' service manager, RunDaemon cancels the
			// context on a stop instead (see bootsvc.RunDaemon).
			return bootsvc.RunDaemon(func(ctx context.Context) error {
				res, err := daemon.Run(ctx, o)
				if err != nil {
					return err
				}
				return printShutdown(out, res)
			})
		},
	}
	daemonCmd.Flags().IntVar(&exitWith, "exit-with", 0, "shut down (verified) when process PID exits")
	daemonCmd.Flags().BoolVar(&printEndpoint, "print-endpoint", false, "print the endpoint (JSON: version, transport, address, state_dir) a daemon of this state directory listens on, and exit; starts nothing")
	daemonCmd.Flags().StringVar(&logFile, "log-file", "", "write the daemon's log to FILE, rotated as [corral] logs says (corral up uses the state directory's daemon.log)")
	daemonCmd.Flags().BoolVar(&noKeeper, "no-keeper", false, "run no keeper process (services then outlive a SIGKILLed daemon until the next start reaps them)")
	root.AddCommand(daemonCmd)

	root.AddCommand(&cobra.Command{
		Use:    "__keeper",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return daemon.RunKeeper(g.state(), os.NewFile(3, "keeper-control"))
		},
	})

	root.AddCommand(&cobra.Command{
		Use:   "bundle [SERVICE]",
		Short: "Write a diagnostic bundle (member trees, statuses, logs, events, redacted config, port owners, doctor)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			svc := ""
			if len(args) == 1 {
				svc = args[0]
			}
			path, err := g.client().Bundle(cmd.Context(), svc)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), path)
			return nil
		},
	})

	root.AddCommand(&cobra.Command{
		Use:   "doctor",
		Short: "Which containment tier and which guarantees hold here, and what would give more",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			d := diag.RunDoctor()
			d.StateDir = g.state()
			d.State = diag.CheckState(d.StateDir)
			if g.json {
				return writeJSON(cmd.OutOrStdout(), d)
			}
			d.Print(cmd.OutOrStdout())
			return nil
		},
	})

	var dryRun bool
	reap := &cobra.Command{
		Use:   "reap",
		Short: "Find and stop what earlier runs left behind (by journal, cgroup and instance marker; never by name)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var reports []client.ReapReport
			rs, err := g.client().Reap(cmd.Context(), dryRun)
			switch {
			case errors.Is(err, client.ErrNoDaemon):
				local, lerr := daemon.ReapLocal(cmd.Context(), g.state(), dryRun)
				if lerr != nil {
					return lerr
				}
				b, _ := json.Marshal(local)
				json.Unmarshal(b, &reports)
			case err != nil:
				return err
			default:
				reports = rs
			}
			if g.json {
				return writeJSON(cmd.OutOrStdout(), reports)
			}
			return printReap(cmd.OutOrStdout(), reports, dryRun)
		},
	}
	reap.Flags().BoolVar(&dryRun, "dry-run", false, "only list what would be stopped")
	root.AddCommand(reap)

	var upTimeout time.Duration
	var upExitWith int
	up := &cobra.Command{
		Use:   "up [SERVICE|@GROUP...]",
		Short: "Check the configuration, start the daemon in the background if none runs, then ensure the services (default: every autostart service)",
		Long: `up first checks the configuration as corral check does, and on a bad file
stops there: nothing is started or changed. It then starts the daemon in
the background if none runs for the state directory (its output goes to
daemon.log there; if it exits before answering, up prints what it wrote in
this run), and ensures the services: every autostart one by default.

If a daemon already runs, up compares the file with the one the daemon
read: a file changed since then is reported, and up does not reload it by
itself (a reload restarts every service whose settings changed, which up,
run to make sure things are up, should not do): corral reload applies it.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := g.parseContainment(); err != nil {
				return err
			}
			if err := checkExitWith(cmd, upExitWith); err != nil {
				return err
			}
			cfg, err := g.loadConfig("nothing was started or changed: fix it and run corral up again")
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), upTimeout)
			defer cancel()
			cl := g.client()
			if info, err := cl.Daemon(ctx); errors.Is(err, client.ErrNoDaemon) {
				if err := g.spawnDaemon(ctx, cl, upExitWith); err != nil {
					return err
				}
			} else if err != nil {
				return err
			} else if err := g.checkRunning(cmd, info, cfg, upExitWith); err != nil {
				return err
			}
			if args, err = expandWith(args, cfg.Groups, cfg.Names()); err != nil {
				return err
			}
			if len(args) == 0 {
				list, err := cl.List(ctx, false)
				if err != nil {
					return err
				}
				for _, s := range list {
					if c, ok := cfg.Services[s.Name]; ok && c.Autostart {
						args = append(args, s.Name)
					}
				}
			}
			return ensureAll(ctx, cmd.OutOrStdout(), cl, args, upTimeout)
		},
	}
	up.Flags().DurationVar(&upTimeout, "timeout", 5*time.Minute, "give up after this long")
	up.Flags().IntVar(&upExitWith, "exit-with", 0, "tie the daemon it starts to process PID: a verified shutdown when PID exits (as corral daemon --exit-with)")
	root.AddCommand(up)

	root.AddCommand(&cobra.Command{
		Use:   "reload",
		Short: "Re-read the configuration; apply only what changed (a bad file is rejected, nothing changes)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			res, err := g.client().Reload(cmd.Context())
			if err != nil {
				return err
			}
			if g.json {
				return writeJSON(cmd.OutOrStdout(), res)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "added %v, removed %v, changed %v, unchanged %v\n", res.Added, res.Removed, res.Changed, res.Unchanged)
			return nil
		},
	})

	root.AddCommand(&cobra.Command{
		Use:   "shutdown",
		Short: "Stop every service (reverse dependency order) and the daemon; exit 0 only if nothing is left",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl := g.client()
			res, err := cl.Shutdown(context.WithoutCancel(cmd.Context()))
			if err != nil {
				return err
			}
			// Wait until the daemon has let go of its socket, and of its
			// lock (released last, as it exits): a corral up right after
			// then starts a new daemon rather than finding the lock held.
			for i := 0; i < 100; i++ {
				_, err := cl.Daemon(cmd.Context())
				if _, held := ipc.LockHolder(g.state()); errors.Is(err, client.ErrNoDaemon) && !held {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			return printShutdown(cmd.OutOrStdout(), toSupervisorResult(res))
		},
	})
}

func toSupervisorResult(r client.ShutdownResult) supervisor.ShutdownResult {
	out := supervisor.ShutdownResult{Stopped: r.Stopped, Errors: r.Errors, Unverified: r.Unverified}
	for _, s := range r.Survivors {
		out.Survivors = append(out.Survivors, supervisor.Survivor(s))
	}
	return out
}

func printShutdown(w io.Writer, res supervisor.ShutdownResult) error {
	fmt.Fprintf(w, "stopped %d services %v\n", len(res.Stopped), res.Stopped)
	for _, e := range res.Errors {
		fmt.Fprintln(w, "error:", e)
	}
	if len(res.Survivors) > 0 {
		fmt.Fprintf(w, "NOT CLEAN: %d supervised processes are still alive:\n", len(res.Survivors))
		for _, s := range res.Survivors {
			fmt.Fprintf(w, "  pid %d of %s (instance %s): %v\n", s.PID, s.Service, s.Instance, s.Cmdline)
		}
		return fmt.Errorf("%w: %d processes", errLeft, len(res.Survivors))
	}
	if len(res.Unverified) > 0 {
		// Nothing was found, but the tier could not prove there was nothing
		// to find: never "verified".
		fmt.Fprintf(w, "UNVERIFIED: no supervised process was found, but %d trees could not be proved empty here:\n", len(res.Unverified))
		for _, u := range res.Unverified {
			fmt.Fprintln(w, "  "+u)
		}
		return fmt.Errorf("%w: %d trees could not be proved empty (corral doctor lists what this tier cannot prove)", errUnverified, len(res.Unverified))
	}
	fmt.Fprintln(w, "verified: 0 supervised processes remain")
	if len(res.Errors) > 0 {
		return fmt.Errorf("shutdown had %d errors", len(res.Errors))
	}
	return nil
}

// spawnDaemon starts `corral daemon` detached, logging to the state
// directory, and waits until it answers (or dies, with its log's tail).
func (g *globals) spawnDaemon(ctx context.Context, cl *client.Client, exitWith int) error {
	if err := statedir.Prepare(g.state()); err != nil {
		return err
	}
	logPath := filepath.Join(g.state(), "daemon.log")
	logf, err := statedir.OpenFile(g.state(), "daemon.log", os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	// Earlier runs' lines stay in the file: only what this daemon writes,
	// after this offset, explains its failure.
	since, err := logf.Seek(0, io.SeekEnd)
	if err != nil {
		return fmt.Errorf("daemon.log: %w", err)
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	cfgPath, _ := filepath.Abs(g.config)
	cmd := exec.Command(exe, "daemon", "-c", cfgPath, "--state-dir", g.state(), "--containment", g.containment, "--log-file", logPath)
	if exitWith != 0 {
		cmd.Args = append(cmd.Args, "--exit-with", strconv.Itoa(exitWith))
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	detach(cmd)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start daemon: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	for d := 5 * time.Millisecond; ; d = min(2*d, 100*time.Millisecond) {
		if _, err := cl.Daemon(ctx); err == nil {
			return nil
		}
		select {
		case err := <-exited:
			if _, derr := cl.Daemon(ctx); derr == nil {
				return nil // another up's daemon won the race for the lock, and answers
			}
			return daemonExited(err, logPath, since)
		case <-ctx.Done():
			return fmt.Errorf("the daemon did not answer on %s: %w", ipc.Path(g.state()), ctx.Err())
		case <-time.After(d):
		}
	}
}

// keeperEnv is the daemon's environment without any instance marker: the
// keeper belongs to no service.
func keeperEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CORRAL_INSTANCE=") && !strings.HasPrefix(kv, "CORRAL_SERVICE=") && !strings.HasPrefix(kv, "CORRAL_STATE=") {
			env = append(env, kv)
		}
	}
	return env
}

func printReap(w io.Writer, reports []client.ReapReport, dryRun bool) error {
	if len(reports) == 0 {
		fmt.Fprintln(w, "nothing left by earlier runs")
		return nil
	}
	failed, gone := 0, 0
	for _, r := range reports {
		if r.Gone && r.Reused == 0 && r.Error == "" {
			gone++
			continue
		}
		verb := "stopped"
		if dryRun {
			verb = "would stop"
		}
		fmt.Fprintf(w, "instance %s of %s: %s %d processes\n", r.Instance, r.Service, verb, len(r.Found))
		for _, p := range r.Found {
			fmt.Fprintf(w, "  pid %d: %s\n", p.PID, strings.Join(p.Cmdline, " "))
		}
		if r.Reused != 0 {
			fmt.Fprintf(w, "  pid %d now belongs to an unrelated process (another start time): left alone\n", r.Reused)
		}
		if r.Unjournaled {
			fmt.Fprintln(w, "  found by its cgroup or its processes' markers: the journal had no live record of it")
		}
		if r.Unverified != "" {
			fmt.Fprintf(w, "  none of it is found any more, but UNVERIFIED: %s\n", r.Unverified)
		}
		if len(r.Zombies) > 0 {
			fmt.Fprintf(w, "  killed, but still unreaped by their parent: pids %v\n", r.Zombies)
		}
		if r.Error != "" {
			failed++
			fmt.Fprintf(w, "  error: %s\n", r.Error)
		}
	}
	if gone > 0 {
		fmt.Fprintf(w, "%d records of earlier runs had nothing left\n", gone)
	}
	if failed > 0 {
		return fmt.Errorf("%w: %d instances could not be reaped completely", errLeft, failed)
	}
	return nil
}
