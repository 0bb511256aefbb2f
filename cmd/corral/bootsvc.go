package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/corral-sh/corral/client"
	"github.com/corral-sh/corral/internal/bootsvc"
	"github.com/corral-sh/corral/internal/config"
)

// bootFlags are the flags of corral service install|uninstall|status.
type bootFlags struct {
	user, system bool
	dryRun       bool
	name         string
	runAs        string
	binary       string
	env          []string
}

func addBootServiceCommands(root *cobra.Command, g *globals) {
	var f bootFlags
	parent := &cobra.Command{
		Use:   "service",
		Short: "Start the daemon at login or boot through the OS's service manager (systemd, launchd, Task Scheduler, Windows services)",
		Long: `service installs, removes and reports a definition that makes the
system's own service manager start "corral -c CONFIG --state-dir DIR daemon"
at login (--user, the default) or at boot (--system):

  Linux    a systemd unit: ~/.config/systemd/user/corral-NAME.service, or
           /etc/systemd/system/corral-NAME.service (Delegate=yes gives corral
           its cgroup subtree; KillMode=mixed lets the daemon stop every
           service itself, verified, before anything is killed)
  macOS    a launchd agent (~/Library/LaunchAgents) or daemon
           (/Library/LaunchDaemons): sh.corral.NAME.plist
  Windows  a Task Scheduler task at the user's logon, in the user's session
           (what a desktop GPU app needs), or with --system a Windows service
           (session 0, LocalSystem, started at boot)

NAME defaults to the configuration's directory (or its file's stem when it
is not corral.toml). The paths are made absolute. --dry-run prints what
would be written and run, and changes nothing. See docs/boot.md.`,
		Example: `  corral -c ~/sd/corral.toml service install --dry-run
  corral -c ~/sd/corral.toml service install
  corral -c ~/sd/corral.toml service status
  sudo corral -c /srv/corral/corral.toml service install --system --run-as corral`,
		Args: cobra.NoArgs,
	}
	pf := parent.PersistentFlags()
	pf.BoolVar(&f.user, "user", false, "the user's own service manager: starts at login (the default)")
	pf.BoolVar(&f.system, "system", false, "the system's service manager: starts at boot (needs root or an administrator)")
	pf.StringVar(&f.name, "name", "", "the definition's name: corral-NAME (default: from the configuration's path)")
	parent.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		if f.user && f.system {
			return fmt.Errorf("%w: --user and --system exclude each other (see corral service --help)", errUsage)
		}
		return nil
	}

	install := &cobra.Command{
		Use:   "install",
		Short: "Write and enable the definition, and start the daemon now",
		Long: `install checks the configuration, writes the definition and enables and
starts it. Run it again after moving corral or the configuration, or after
changing shutdown_timeout: the manager's stop timeout is sized from it.
The daemon gets this PATH (the manager's own is minimal) and the variables
given with --env (Linux and macOS).`,
		Example: `  corral service install --dry-run            # print the unit and the commands, change nothing
  corral service install                      # ~/.config/systemd/user/corral-NAME.service, enabled and started
  corral service install --env CUDA_VISIBLE_DEVICES=0
  sudo corral service install --system --run-as corral`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, s, err := g.bootSpec(&f, true)
			if err != nil {
				return err
			}
			if !f.dryRun {
				if err := bootsvc.CheckPrivilege(s.Scope); err != nil {
					return err
				}
			}
			p, err := m.Install(s)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "%s (%s scope) for %s, state in %s\n", m.Name(), s.Scope, s.Config, s.StateDir)
			g.noteRunningDaemon(cmd.Context(), w)
			return bootsvc.Apply(cmd.Context(), w, p, f.dryRun, nil)
		},
	}
	install.Flags().BoolVar(&f.dryRun, "dry-run", false, "print what would be written and run; change nothing")
	install.Flags().StringVar(&f.runAs, "run-as", "", "with --system: the user the daemon runs as (default root; not on Windows)")
	install.Flags().StringVar(&f.binary, "binary", "", "the corral binary the manager runs (default: this one)")
	install.Flags().StringArrayVar(&f.env, "env", nil, "KEY=VALUE for the daemon and every service (repeatable; Linux and macOS)")

	uninstall := &cobra.Command{
		Use:   "uninstall",
		Short: "Stop the daemon (verified shutdown), disable and remove the definition",
		Example: `  corral service uninstall --dry-run
  corral service uninstall
  sudo corral service uninstall --system`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, s, err := g.bootSpec(&f, false)
			if err != nil {
				return err
			}
			if !f.dryRun {
				if err := bootsvc.CheckPrivilege(s.Scope); err != nil {
					return err
				}
			}
			p, err := m.Uninstall(s)
			if err != nil {
				return err
			}
			var shutdownErr error
			if !m.Graceful() {
				// Task Scheduler ends a task by terminating it: the trees
				// would die with the daemon (their Job Objects), but
				// without their stop hooks and grace periods.
				p.Steps = append([]bootsvc.Step{{
					Says: "ask the daemon of " + s.StateDir + " for a verified shutdown, if one runs",
					Call: func(ctx context.Context, w io.Writer) error {
						shutdownErr = g.shutdownIfRunning(ctx, w)
						return nil
					},
				}}, p.Steps...)
			}
			if err := bootsvc.Apply(cmd.Context(), cmd.OutOrStdout(), p, f.dryRun, nil); err != nil {
				return err
			}
			return shutdownErr
		},
	}
	uninstall.Flags().BoolVar(&f.dryRun, "dry-run", false, "print what would be stopped, run and removed; change nothing")

	status := &cobra.Command{
		Use:   "status",
		Short: "Whether the definition is installed, enabled and running, and whether its daemon answers",
		Example: `  corral service status
  corral service status --system --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, s, err := g.bootSpec(&f, false)
			if err != nil {
				return err
			}
			st := m.Status(cmd.Context(), s, nil)
			ctx, cancel := context.WithTimeout(cmd.Context(), 3*time.Second)
			defer cancel()
			info, derr := g.client().Daemon(ctx)
			if g.json {
				out := struct {
					bootsvc.Status
					Scope    bootsvc.Scope  `json:"scope"`
					StateDir string         `json:"state_dir"`
					Daemon   *client.Daemon `json:"daemon"`
					NoDaemon string         `json:"no_daemon,omitempty"`
				}{Status: st, Scope: s.Scope, StateDir: s.StateDir}
				if derr == nil {
					out.Daemon = &info
				} else {
					out.NoDaemon = derr.Error()
				}
				return writeJSON(cmd.OutOrStdout(), out)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "%s (%s, %s scope)\n", st.Name, st.Manager, s.Scope)
			if st.Path != "" {
				fmt.Fprintf(w, "  definition: %s (%s)\n", st.Path, map[bool]string{true: "installed", false: "not installed"}[st.Installed])
			} else {
				fmt.Fprintf(w, "  installed:  %v\n", st.Installed)
			}
			fmt.Fprintf(w, "  enabled:    %s\n", st.Enabled)
			if st.PID != 0 {
				fmt.Fprintf(w, "  active:     %s, pid %d\n", st.Active, st.PID)
			} else {
				fmt.Fprintf(w, "  active:     %s\n", st.Active)
			}
			if derr == nil {
				fmt.Fprintf(w, "  daemon:     answering for %s (pid %d, corral %s, containment %s)\n", s.StateDir, info.PID, info.Version, info.Mechanism)
			} else {
				fmt.Fprintf(w, "  daemon:     none answering for %s\n", s.StateDir)
			}
			return nil
		},
	}
	parent.AddCommand(install, uninstall, status)
	root.AddCommand(parent)
}

// bootSpec resolves the flags into a manager and a Spec. install checks
// the configuration (a daemon that cannot read it would only fail at
// every login) and sizes the stop timeout from its shutdown_timeout;
// uninstall and status need only the paths, so that a configuration that
// has gone does not keep its definition in place.
func (g *globals) bootSpec(f *bootFlags, install bool) (bootsvc.Manager, bootsvc.Spec, error) {
	scope := bootsvc.User
	if f.system {
		scope = bootsvc.System
	}
	m, err := bootsvc.Native(scope)
	if err != nil {
		return nil, bootsvc.Spec{}, err
	}
	cfgPath, err := filepath.Abs(g.config)
	if err != nil {
		return nil, bootsvc.Spec{}, fmt.Errorf("corral: %w", err)
	}
	stateDir, err := filepath.Abs(g.state())
	if err != nil {
		return nil, bootsvc.Spec{}, fmt.Errorf("corral: %w", err)
	}
	s := bootsvc.Spec{
		Name: f.name, Scope: scope, Config: cfgPath, StateDir: stateDir,
		WorkingDir: filepath.Dir(cfgPath), RunAs: f.runAs, Containment: g.containment,
	}
	if s.Name == "" {
		s.Name = bootsvc.DefaultName(cfgPath)
	}
	if s.Executable, err = corralBinary(f.binary, install); err != nil {
		return nil, bootsvc.Spec{}, err
	}
	if runtime.GOOS == "windows" {
		if u, err := user.Current(); err == nil {
			s.Account, s.AccountSID = u.Username, u.Uid
		}
	} else if path := os.Getenv("PATH"); path != "" {
		// The manager's PATH is minimal (systemd's fixed list; launchd's
		// /usr/bin:/bin:/usr/sbin:/sbin): services started at login
		// would not find what they find from the shell.
		s.Env = append(s.Env, "PATH="+path)
	}
	s.Env = append(s.Env, f.env...)
	if install {
		cfg, err := config.Load(cfgPath)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, bootsvc.Spec{}, fmt.Errorf("%w: no configuration file %s: name one with -c FILE", errUsage, cfgPath)
		}
		if err != nil {
			return nil, bootsvc.Spec{}, fmt.Errorf("the configuration must load before a service manager starts the daemon with it: %w", err)
		}
		s.StopTimeout = cfg.ShutdownTimeout + bootsvc.StopMargin
	}
	return m, s, nil
}

// corralBinary is the binary the manager is to run: --binary, or this one
// with symlinks resolved (a manager should not follow a link that a
// package upgrade may repoint mid-start). For an install, a go run build
// is refused: it is deleted when go run ends.
func corralBinary(flag string, install bool) (string, error) {
	exe := flag
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			return "", fmt.Errorf("corral: find this binary: %w (name it with --binary)", err)
		}
		if r, err := filepath.EvalSymlinks(exe); err == nil {
			exe = r
		}
		if install && strings.Contains(filepath.ToSlash(exe), "/go-build") {
			return "", fmt.Errorf("%w: corral runs from go run's temporary build (%s), which is removed when it exits: build or install corral (go install ./cmd/corral) and run that, or name it with --binary", errUsage, exe)
		}
	}
	abs, err := filepath.Abs(exe)
	if err != nil {
		return "", fmt.Errorf("corral: %w", err)
	}
	if fi, err := os.Stat(abs); err != nil || fi.IsDir() {
		return "", fmt.Errorf("%w: --binary %s is not a file", errUsage, abs)
	}
	return abs, nil
}

// noteRunningDaemon says when a daemon already serves the state
// directory: the manager's daemon cannot take its lock while it runs.
func (g *globals) noteRunningDaemon(ctx context.Context, w io.Writer) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if info, err := g.client().Daemon(ctx); err == nil {
		fmt.Fprintf(w, "note: a daemon (pid %d) already runs for this state directory; unless it is this service's own, the service's daemon cannot start while it runs: corral shutdown it first\n", info.PID)
	}
}

// shutdownIfRunning asks the state directory's daemon, if one answers, for
// a verified shutdown and prints its result; the error says what
// survived.
func (g *globals) shutdownIfRunning(ctx context.Context, w io.Writer) error {
	cl := g.client()
	if _, err := cl.Daemon(ctx); errors.Is(err, client.ErrNoDaemon) {
		fmt.Fprintln(w, "  (no daemon answers: nothing to shut down)")
		return nil
	} else if err != nil {
		return err
	}
	res, err := cl.Shutdown(context.WithoutCancel(ctx))
	if err != nil {
		return err
	}
	return printShutdown(w, toSupervisorResult(res))
}
