package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/corral-sh/corral/internal/config"
)

// configError is a configuration that could not be loaded: each problem
// on a line of its own (file:line:col), then what was not done and what
// to do. It is a usage error (exit 2).
type configError struct {
	err  error
	path string
	todo string // "nothing was started or changed: fix it and run corral up again"
}

func (e *configError) Error() string {
	var lines []string
	for _, l := range strings.Split(e.err.Error(), "\n") {
		lines = append(lines, strings.TrimPrefix(l, "config: "))
	}
	n := len(configProblems(e.err))
	if n == 0 {
		// The file could not be read: one line says it all.
		return strings.Join(lines, "\ncorral: ")
	}
	summary := fmt.Sprintf("%s: %d errors; %s", e.path, n, e.todo)
	if n == 1 {
		summary = fmt.Sprintf("%s: 1 error; %s", e.path, e.todo)
	}
	// run prints "corral: " before the first line; the others get it here.
	return strings.Join(append(lines, summary), "\ncorral: ")
}

func (e *configError) Unwrap() []error { return []error{errUsage, e.err} }

// configProblems returns the positioned errors of a failed config.Load.
func configProblems(err error) []*config.Error {
	var out []*config.Error
	var walk func(error)
	walk = func(err error) {
		if ce, ok := err.(*config.Error); ok {
			out = append(out, ce)
			return
		}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
		}
	}
	walk(err)
	return out
}

// loadConfig loads the configuration as the daemon would (config.Load:
// the same rules as its start and a reload). todo says, after a bad file,
// what was not done and how to go on.
func (g *globals) loadConfig(todo string) (*config.File, error) {
	f, err := config.Load(g.config)
	if err == nil {
		return f, nil
	}
	if errors.Is(err, fs.ErrNotExist) {
		abs, _ := filepath.Abs(g.config)
		return nil, usageErr("no configuration file %s (%s): write one with: corral init; or name another with -c FILE", g.config, abs)
	}
	return nil, &configError{err: err, path: g.config, todo: todo}
}

func addCheckCommand(root *cobra.Command, g *globals) {
	root.AddCommand(&cobra.Command{
		Use:   "check",
		Short: "Validate the configuration without a daemon (the rules of start and reload) and summarise its services",
		Long: `check reads the configuration (-c, default ./corral.toml) with exactly the
rules the daemon applies at its start and on a reload, and starts nothing.
Every problem is reported with file:line:col, the key, what is wrong and
what would be accepted. On success it prints one line per service: when it
starts, what makes it ready, its profiles and its command.

corral up runs the same check first and stops there on a bad file.
Exit codes: 0 valid, 2 invalid or missing.`,
		Example: `  corral check                       # ./corral.toml
  corral -c ~/apps/sd/corral.toml check
  corral check --json                # {"file": ..., "valid": true, "services": [...]}`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := g.loadConfig("fix it and run corral check again")
			if g.json {
				if werr := writeJSON(cmd.OutOrStdout(), checkReport(g.config, f, err)); werr != nil {
					return werr
				}
			}
			if err != nil {
				return err
			}
			if !g.json {
				printCheck(cmd.OutOrStdout(), g.config, f)
			}
			return nil
		},
	})
}

type checkJSON struct {
	File     string              `json:"file"`
	Valid    bool                `json:"valid"`
	Errors   []checkProblem      `json:"errors"`
	Services []checkService      `json:"services"`
	Includes []string            `json:"includes"`
	Groups   map[string][]string `json:"groups"`
}

type checkProblem struct {
	File    string `json:"file"`
	Line    int    `json:"line"`
	Col     int    `json:"col"`
	Key     string `json:"key,omitempty"`
	Message string `json:"message"`
}

type checkService struct {
	Name      string   `json:"name"`
	Autostart bool     `json:"autostart"`
	After     []string `json:"after"`
	Preset    string   `json:"preset,omitempty"`
	Profiles  []string `json:"profiles"`
	Ready     string   `json:"ready"`
	Command   []string `json:"command"`
	Dir       string   `json:"dir"`
}

func checkReport(path string, f *config.File, err error) checkJSON {
	out := checkJSON{File: path, Valid: err == nil, Errors: []checkProblem{}, Services: []checkService{}, Includes: []string{}, Groups: map[string][]string{}}
	if err != nil {
		ps := configProblems(err)
		for _, p := range ps {
			out.Errors = append(out.Errors, checkProblem{File: p.File, Line: p.Line, Col: p.Col, Key: p.Key, Message: p.Msg})
		}
		if len(ps) == 0 {
			out.Errors = append(out.Errors, checkProblem{File: path, Message: err.Error()})
		}
		return out
	}
	out.Includes = nonNil(f.Includes)
	for gname, members := range f.Groups {
		out.Groups[gname] = members
	}
	for _, n := range f.Names() {
		s := f.Services[n]
		out.Services = append(out.Services, checkService{Name: n, Autostart: s.Autostart, After: nonNil(s.After), Preset: s.Preset,
			Profiles: nonNil(profileNames(s)), Ready: readyText(s.Ready), Command: s.Argv, Dir: s.Dir})
	}
	return out
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func profileNames(s *config.Service) []string {
	var out []string
	for p := range s.Profiles {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// readyText says what makes a service ready, in a few words.
func readyText(p config.Probe) string {
	if len(p.All) > 0 {
		all := make([]string, len(p.All))
		for i, q := range p.All {
			all[i] = readyText(q)
		}
		return strings.Join(all, " and ")
	}
	var parts []string
	if p.HTTP != "" {
		parts = append(parts, p.HTTP)
	}
	if p.TCP != "" {
		parts = append(parts, "tcp "+p.TCP)
	}
	if len(p.Exec) > 0 {
		parts = append(parts, "exec "+strings.Join(p.Exec, " "))
	}
	if p.Log != nil {
		parts = append(parts, fmt.Sprintf("log %q", p.Log.String()))
	}
	if len(parts) == 0 {
		return "as soon as it runs"
	}
	return strings.Join(parts, " + ")
}

// commandText is a service's command as the user wrote it.
func commandText(s *config.Service) string {
	if s.Shell && len(s.Argv) > 0 {
		return s.Argv[len(s.Argv)-1]
	}
	return strings.Join(s.Argv, " ")
}

func printCheck(w io.Writer, path string, f *config.File) {
	auto := 0
	for _, s := range f.Services {
		if s.Autostart {
			auto++
		}
	}
	noun := "services"
	if len(f.Services) == 1 {
		noun = "service"
	}
	fmt.Fprintf(w, "%s is valid: %d %s, %d started by corral up", path, len(f.Services), noun, auto)
	if n := len(f.Includes); n > 0 {
		fmt.Fprintf(w, " (with %d included %s: %s)", n, map[bool]string{true: "file", false: "files"}[n == 1], strings.Join(f.Includes, ", "))
	}
	fmt.Fprintln(w)
	for _, gname := range sortedGroups(f.Groups) {
		fmt.Fprintf(w, "group @%s: %s\n", gname, strings.Join(f.Groups[gname], ", "))
	}
	if len(f.Services) == 0 {
		fmt.Fprintln(w, "add one: [services.NAME] with command = [\"program\", \"arg\"] (docs/configuration.md)")
		return
	}
	fw := newFitWriter(w)
	tw := tabwriter.NewWriter(fw, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVICE\tSTARTS\tPROFILES\tREADY WHEN\tCOMMAND")
	for _, n := range f.Names() {
		s := f.Services[n]
		starts := "on demand"
		if s.Autostart {
			starts = "with up"
		}
		if len(s.After) > 0 {
			starts += ", after " + strings.Join(s.After, ", ")
		}
		profiles := strings.Join(profileNames(s), ", ")
		if profiles == "" {
			profiles = "-"
		}
		ready := readyText(s.Ready)
		if s.Preset != "" {
			ready = s.Preset + ": " + ready
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", n, starts, profiles, ready, commandText(s))
	}
	tw.Flush()
	fw.Flush()
}
