package bootsvc

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Manager is one operating system's service manager.
type Manager interface {
	// Name names the manager for people: "systemd (user)", "launchd
	// (agent)", "Task Scheduler", "Windows service".
	Name() string
	// Install and Uninstall build the plans that write and enable, or
	// stop and remove, s's definition. They touch nothing.
	Install(s Spec) (Plan, error)
	Uninstall(s Spec) (Plan, error)
	// Status reports what the manager knows of s's definition.
	Status(ctx context.Context, s Spec, run Runner) Status
	// Graceful reports whether the manager's stop lets the daemon run its
	// verified shutdown (a stop signal, or a service control). Task
	// Scheduler's does not: the caller asks the daemon to shut down first.
	Graceful() bool
}

// Status is what a manager says of one installed daemon.
type Status struct {
	Manager string `json:"manager"`
	// Name is the unit, label, task or service name.
	Name string `json:"name"`
	// Path is the definition's file ("" for a Windows service, whose
	// definition is in the registry).
	Path      string `json:"path,omitempty"`
	Installed bool   `json:"installed"`
	// Enabled and Active are the manager's own words ("enabled",
	// "active", "running", ...), or "unknown: why".
	Enabled string `json:"enabled"`
	Active  string `json:"active"`
	// PID is the daemon's process id when the manager names it.
	PID int `json:"pid,omitempty"`
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil || !errors.Is(err, fs.ErrNotExist)
}

// lookPath resolves a manager's command, or says why it cannot be used.
func lookPath(name string) (string, error) {
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%s is not installed (not on PATH)", name)
	}
	return p, nil
}

// firstLine is the first line of a command's output, trimmed.
func firstLine(out []byte) string {
	l, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return strings.TrimSpace(l)
}

// Systemd manages units of a systemd manager: the user's (systemctl
// --user) or the system's.
type Systemd struct {
	// UserDir and SystemDir are where user and system units are written:
	// $XDG_CONFIG_HOME/systemd/user (~/.config/systemd/user) and
	// /etc/systemd/system, the directories systemd reads that are meant
	// for units an administrator or user adds.
	UserDir   string
	SystemDir string
	// Systemctl is the systemctl binary ("" when there is none).
	Systemctl string
}

func (m Systemd) Name() string   { return "systemd" }
func (m Systemd) Graceful() bool { return true }

// Path is where s's unit is written.
func (m Systemd) Path(s Spec) string {
	dir := m.UserDir
	if s.Scope == System {
		dir = m.SystemDir
	}
	return filepath.Join(dir, s.UnitName())
}

func (m Systemd) ctl(s Spec, args ...string) []string {
	argv := []string{m.Systemctl}
	if s.Scope == User {
		argv = append(argv, "--user")
	}
	return append(argv, args...)
}

// live reports whether a systemd manager of s's scope runs: systemctl
// enable and disable work on the files without one (a container, an ssh
// session without systemd --user), daemon-reload, start and stop do not.
func (m Systemd) live(s Spec) func(context.Context, Runner) error {
	return func(ctx context.Context, run Runner) error {
		out, err := run(ctx, m.ctl(s, "is-system-running"))
		state := firstLine(out)
		switch state {
		case "running", "degraded", "starting", "initializing", "maintenance", "stopping":
			return nil
		}
		who := "the system's systemd"
		if s.Scope == User {
			who = "this user's systemd (systemctl --user)"
		}
		if state == "" && err != nil {
			state = err.Error()
		}
		return fmt.Errorf("%s is not running: is-system-running says %q", who, state)
	}
}

func (m Systemd) Install(s Spec) (Plan, error) {
	unit, err := SystemdUnit(s)
	if err != nil {
		return Plan{}, err
	}
	path := m.Path(s)
	p := Plan{Steps: []Step{{Write: path, Data: []byte(unit), Mode: 0o644}}}
	if m.Systemctl == "" {
		p.Done = "systemctl is not installed: the unit is written but not enabled"
		return p, nil
	}
	p.Live = m.live(s)
	u := s.UnitName()
	p.Steps = append(p.Steps,
		Step{Argv: m.ctl(s, "daemon-reload"), Live: true},
		Step{Argv: m.ctl(s, "enable", "--now", u), Live: true},
		// Without a running manager the unit is still enabled: it
		// starts at the next boot or login.
		Step{Argv: m.ctl(s, "enable", u), Offline: true},
	)
	when := "boot"
	if s.Scope == User {
		when = "login (at boot too with: loginctl enable-linger)"
	}
	p.Done = fmt.Sprintf("%s is enabled and started: the daemon starts at every %s.\n"+
		"A daemon that was already running keeps its old settings until: %s",
		u, when, shellWords(m.ctl(s, "restart", u)))
	p.Later = fmt.Sprintf("%s is written and enabled for the next %s, not started now", u, strings.Fields(when)[0])
	return p, nil
}

func (m Systemd) Uninstall(s Spec) (Plan, error) {
	if err := s.check(unixPaths); err != nil {
		return Plan{}, err
	}
	path, u := m.Path(s), s.UnitName()
	var p Plan
	if m.Systemctl != "" {
		p.Live = m.live(s)
		p.Steps = append(p.Steps,
			// The stop is the daemon's verified shutdown (SIGTERM);
			// systemctl waits for it, up to TimeoutStopSec.
			Step{Argv: m.ctl(s, "disable", "--now", u), Live: true, Tolerate: true,
				Why: "stops the daemon (its verified shutdown; the result is in its journal: journalctl " + strings.Join(m.ctl(s)[1:], " ") + " -u " + u + ")"},
			Step{Argv: m.ctl(s, "disable", u), Offline: true, Tolerate: true},
		)
	}
	p.Steps = append(p.Steps, Step{Remove: path})
	if m.Systemctl != "" {
		p.Steps = append(p.Steps,
			Step{Argv: m.ctl(s, "daemon-reload"), Live: true},
			Step{Argv: m.ctl(s, "reset-failed", u), Live: true, Tolerate: true},
		)
	}
	// Without a running manager nothing of it runs: nothing is left for
	// later.
	p.Done = u + " is disabled and removed"
	return p, nil
}

func (m Systemd) Status(ctx context.Context, s Spec, run Runner) Status {
	if run == nil {
		run = execRunner
	}
	st := Status{Manager: "systemd (" + string(s.Scope) + ")", Name: s.UnitName(), Path: m.Path(s)}
	st.Installed = exists(st.Path)
	if m.Systemctl == "" {
		st.Enabled, st.Active = "unknown: systemctl is not installed", "unknown: systemctl is not installed"
		return st
	}
	// is-enabled reads the unit files: it answers without a running
	// manager.
	out, _ := run(ctx, m.ctl(s, "is-enabled", s.UnitName()))
	switch st.Enabled = firstLine(out); {
	case strings.HasPrefix(st.Enabled, "Failed") && !st.Installed:
		st.Enabled = "no (not installed)"
	case strings.HasPrefix(st.Enabled, "Failed") || st.Enabled == "":
		st.Enabled = "unknown: " + st.Enabled
	}
	if err := m.live(s)(ctx, run); err != nil {
		st.Active = "unknown: " + err.Error()
		return st
	}
	out, _ = run(ctx, m.ctl(s, "show", "--property=ActiveState,SubState,MainPID", s.UnitName()))
	props := map[string]string{}
	for _, l := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(l), "="); ok {
			props[k] = v
		}
	}
	st.Active = props["ActiveState"]
	if sub := props["SubState"]; sub != "" && sub != st.Active {
		st.Active += " (" + sub + ")"
	}
	fmt.Sscan(props["MainPID"], &st.PID)
	return st
}
