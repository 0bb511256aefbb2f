package bootsvc

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
)

// LaunchdPlist returns the launchd property list that runs s's daemon: an
// agent (User: ~/Library/LaunchAgents, started in the user's GUI session at
// login) or a daemon (System: /Library/LaunchDaemons, started at boot).
// logPath is where launchd sends the daemon's output.
//
// KeepAlive restarts the daemon only when it did not exit 0 or died of a
// signal (systemd's Restart=on-failure): a daemon that shut down cleanly,
// as at `launchctl bootout` or on `corral shutdown`, stays down.
// ExitTimeOut is the wait between launchd's SIGTERM and its SIGKILL (20 s
// by default, too short for a verified shutdown with grace periods).
func LaunchdPlist(s Spec, logPath string) ([]byte, error) {
	if err := s.check(unixPaths); err != nil {
		return nil, err
	}
	if !unixPaths.isAbs(logPath) {
		return nil, fmt.Errorf("bootsvc: log path %q is not absolute", logPath)
	}
	if err := plainText("log path", logPath); err != nil {
		return nil, err
	}
	d := plistDict{
		{"Label", s.Label()},
		{"ProgramArguments", append([]string{s.Executable}, s.Args()...)},
		{"RunAtLoad", true},
		{"KeepAlive", plistDict{{"SuccessfulExit", false}, {"Crashed", true}}},
		{"ExitTimeOut", int64((s.stopTimeout() + 999_999_999) / 1_000_000_000)},
		{"ThrottleInterval", int64(10)},
		{"StandardOutPath", logPath},
		{"StandardErrorPath", logPath},
	}
	if s.WorkingDir != "" {
		d = append(d, plistKV{"WorkingDirectory", s.WorkingDir})
	}
	if len(s.Env) > 0 {
		env := plistDict{}
		for _, kv := range s.Env {
			k, v, _ := strings.Cut(kv, "=")
			env = append(env, plistKV{k, v})
		}
		// launchd keeps the last of repeated keys; a dict should not
		// have them at all.
		env = dedupLast(env)
		sort.SliceStable(env, func(i, j int) bool { return env[i].Key < env[j].Key })
		d = append(d, plistKV{"EnvironmentVariables", env})
	}
	if s.Scope == System && s.RunAs != "" {
		d = append(d, plistKV{"UserName", s.RunAs})
	}
	var b bytes.Buffer
	b.WriteString(xml.Header)
	b.WriteString(`<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">` + "\n")
	// No path in the comment: a comment cannot hold "--", a path can.
	b.WriteString("<!-- The corral daemon, written by `corral service install`. See " + DocURL + " -->\n")
	b.WriteString(`<plist version="1.0">` + "\n")
	if err := writePlist(&b, d, 0); err != nil {
		return nil, err
	}
	b.WriteString("</plist>\n")
	return b.Bytes(), nil
}

type plistKV struct {
	Key   string
	Value any // string, bool, int64, []string, plistDict
}

// plistDict keeps its keys in the order written.
type plistDict []plistKV

func dedupLast(d plistDict) plistDict {
	last := map[string]int{}
	for i, kv := range d {
		last[kv.Key] = i
	}
	var out plistDict
	for i, kv := range d {
		if last[kv.Key] == i {
			out = append(out, kv)
		}
	}
	return out
}

func writePlist(b *bytes.Buffer, v any, depth int) error {
	ind := strings.Repeat("\t", depth)
	text := func(s string) {
		xml.EscapeText(b, []byte(s))
	}
	switch v := v.(type) {
	case string:
		b.WriteString(ind + "<string>")
		text(v)
		b.WriteString("</string>\n")
	case bool:
		if v {
			b.WriteString(ind + "<true/>\n")
		} else {
			b.WriteString(ind + "<false/>\n")
		}
	case int64:
		fmt.Fprintf(b, "%s<integer>%d</integer>\n", ind, v)
	case []string:
		b.WriteString(ind + "<array>\n")
		for _, s := range v {
			if err := writePlist(b, s, depth+1); err != nil {
				return err
			}
		}
		b.WriteString(ind + "</array>\n")
	case plistDict:
		b.WriteString(ind + "<dict>\n")
		for _, kv := range v {
			b.WriteString(ind + "\t<key>")
			text(kv.Key)
			b.WriteString("</key>\n")
			if err := writePlist(b, kv.Value, depth+1); err != nil {
				return err
			}
		}
		b.WriteString(ind + "</dict>\n")
	default:
		return fmt.Errorf("bootsvc: no plist form for %T", v)
	}
	return nil
}

// Launchd manages a launchd agent (User: the user's GUI session,
// gui/UID) or daemon (System: the system domain).
type Launchd struct {
	// Home is the user's home: agents go to ~/Library/LaunchAgents and
	// log to ~/Library/Logs.
	Home string
	// UID names the user's GUI domain (gui/UID).
	UID int
	// Launchctl is the launchctl binary ("" when there is none).
	Launchctl string
}

func (m Launchd) Name() string   { return "launchd" }
func (m Launchd) Graceful() bool { return true }

// Path is where s's property list is written.
func (m Launchd) Path(s Spec) string {
	if s.Scope == System {
		return filepath.Join("/Library/LaunchDaemons", s.Label()+".plist")
	}
	return filepath.Join(m.Home, "Library", "LaunchAgents", s.Label()+".plist")
}

// LogPath is where launchd sends the daemon's output: the system's or the
// user's Library/Logs, where Console.app looks.
func (m Launchd) LogPath(s Spec) string {
	if s.Scope == System {
		return filepath.Join("/Library/Logs", s.TaskName()+".log")
	}
	return filepath.Join(m.Home, "Library", "Logs", s.TaskName()+".log")
}

func (m Launchd) domain(s Spec) string {
	if s.Scope == System {
		return "system"
	}
	return fmt.Sprintf("gui/%d", m.UID)
}

func (m Launchd) target(s Spec) string { return m.domain(s) + "/" + s.Label() }

func (m Launchd) live() func(context.Context, Runner) error {
	return func(context.Context, Runner) error {
		if m.Launchctl == "" {
			return errors.New("launchctl is not installed")
		}
		return nil
	}
}

func (m Launchd) Install(s Spec) (Plan, error) {
	data, err := LaunchdPlist(s, m.LogPath(s))
	if err != nil {
		return Plan{}, err
	}
	path := m.Path(s)
	return Plan{
		Live: m.live(),
		Steps: []Step{
			{Write: path, Data: data, Mode: 0o644},
			// bootstrap refuses a label that is loaded: an older
			// definition is booted out first (its daemon's stop is the
			// verified shutdown, SIGTERM, up to ExitTimeOut).
			{Argv: []string{m.Launchctl, "bootout", m.target(s)}, Live: true, Tolerate: true,
				Why: "unloads an earlier definition, if one is loaded (an error here only means none was)"},
			// A label disabled once (launchctl disable) stays disabled
			// across bootstraps until enabled.
			{Argv: []string{m.Launchctl, "enable", m.target(s)}, Live: true},
			{Argv: []string{m.Launchctl, "bootstrap", m.domain(s), path}, Live: true,
				Why: "loads and starts it (an agent needs the user's GUI login: from ssh alone this fails, and it loads at the next login)"},
		},
		Done:  fmt.Sprintf("%s is loaded: the daemon starts at every %s; its output goes to %s", s.Label(), map[Scope]string{User: "login", System: "boot"}[s.Scope], m.LogPath(s)),
		Later: s.Label() + " is written; launchd loads it at the next " + map[Scope]string{User: "login", System: "boot"}[s.Scope],
	}, nil
}

func (m Launchd) Uninstall(s Spec) (Plan, error) {
	if err := s.check(unixPaths); err != nil {
		return Plan{}, err
	}
	return Plan{
		Live: m.live(),
		Steps: []Step{
			{Argv: []string{m.Launchctl, "bootout", m.target(s)}, Live: true, Tolerate: true,
				Why: "stops the daemon (its verified shutdown; the result is in " + m.LogPath(s) + ") and unloads it"},
			{Remove: m.Path(s)},
		},
		Done:  s.Label() + " is stopped and removed",
		Later: s.Label() + " is removed, but may still be loaded",
	}, nil
}

func (m Launchd) Status(ctx context.Context, s Spec, run Runner) Status {
	if run == nil {
		run = execRunner
	}
	st := Status{Manager: map[Scope]string{User: "launchd (agent)", System: "launchd (daemon)"}[s.Scope], Name: s.Label(), Path: m.Path(s)}
	st.Installed = exists(st.Path)
	if m.Launchctl == "" {
		st.Enabled, st.Active = "unknown: launchctl is not installed", "unknown: launchctl is not installed"
		return st
	}
	out, err := run(ctx, []string{m.Launchctl, "print", m.target(s)})
	if err != nil {
		st.Enabled, st.Active = "not loaded", "inactive"
		return st
	}
	st.Enabled, st.Active = "loaded", "unknown"
	// launchctl print's "state = running" and "pid = N" lines (its format
	// is not a stable interface; the words are shown as they are).
	for _, l := range strings.Split(string(out), "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(l), " = ")
		switch {
		case !ok:
		case k == "state" && st.Active == "unknown":
			st.Active = v
		case k == "pid" && st.PID == 0:
			fmt.Sscan(v, &st.PID)
		}
	}
	return st
}
